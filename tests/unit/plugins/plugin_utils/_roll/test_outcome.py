"""How a roll ended: the summary and the table."""
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import outcome as roll_outcome
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import OPTIONS, FakeClient, targets


def test_summary_counts_and_table(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(["Web_IN_0", "Web_IN_1"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32, start=1.0, end=2.0)
    state["deployments"]["svc/svc-production"].update(stopped=True, stop_reason="Web_IN_1: boom")
    summary = roll_outcome.summarize(state, state_file)
    assert summary["status"] == "failed" and summary["counts"] == {"done": 1, "failed": 0, "untouched": 1, "skipped": 0}
    assert summary["hosts"]["h-Web_IN_0"]["outcome"] == "reimaged"
    assert summary["hosts"]["h-Web_IN_1"]["outcome"] == "not_reimaged" and "boom" in summary["hosts"]["h-Web_IN_1"]["msg"]
    table = roll_outcome.format_table(summary)
    assert "a" * 32 in table and "untouched" in table and "rolling reimage failed" in table
