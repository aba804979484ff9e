"""The roll's HTML report, from hand-made states: timeline, figures, escaping, self-containedness, file mode."""
import os
import stat

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import report as roll_report

from tests.html_check import check_report

T0 = 1_800_000_000.0
HOSTILE = '<img src="http://evil.example/x.png"> & </svg><script>alert(1)</script>'


def instance(dep, name, ud, start, end, outcome="done", error=None, resumed=False, request_id=None):
    return {"host": "h-" + name, "deployment": dep, "cloud_service": dep.split("/")[0],
            "deployment_name": dep.split("/")[1], "instance": name, "role": name.split("_")[0], "upgrade_domain": ud,
            "outcome": outcome, "request_id": request_id or ("%032x" % abs(hash(dep + name)))[:32],
            "start": start, "end": end, "error": {"code": "OperationFailed", "message": error} if error else None,
            "resumed": resumed, "round": ud}


def state(kind="reboot"):
    prod, stag = "svc/svc-prod", "svc/svc-stag"
    instances = [
        # prod: one upgrade domain at a time, two instances sent back to back in each.
        instance(prod, "Web_IN_0", 0, T0, T0 + 10), instance(prod, "Worker_IN_0", 0, T0 + 4, T0 + 12),
        instance(prod, "Web_IN_1", 1, T0 + 12, T0 + 20),
        instance(prod, "Worker_IN_1", 1, T0 + 16, T0 + 22, outcome="failed", error=HOSTILE),
        instance(prod, "Web_IN_2", 2, None, None, outcome="pending"),
        # stag: a bar of upgrade domain 1 starts before the one of domain 0 ends: two domains down at once.
        instance(stag, "Web_IN_0", 0, T0, T0 + 30), instance(stag, "Web_IN_1", 1, T0 + 25, T0 + 40),
        instance(stag, "Web_IN_2", 2, T0 - 5000, T0 - 4000, resumed=True),
    ]
    return {"version": 2, "roll_id": "0123456789abcdef", "kind": kind, "status": "failed", "started": T0 - 2,
            "finished": T0 + 45,
            "deployments": {prod: {"cloud_service": "svc", "deployment_name": "svc-prod", "slot": "production",
                                   "stopped": True, "stop_reason": "Worker_IN_1: " + HOSTILE},
                            stag: {"cloud_service": "svc", "deployment_name": "svc-stag", "slot": "staging",
                                   "stopped": False, "stop_reason": None}},
            "instances": {"%s/%s" % (i["deployment"], i["instance"].lower()): i for i in instances},
            "hosts": {}}


def test_bars_and_the_most_upgrade_domains_down_at_once_are_computed_from_the_times():
    bars = roll_report.bars(state())
    assert {(b["deployment"], b["instance"]) for b in bars} == {
        ("svc/svc-prod", n) for n in ("Web_IN_0", "Worker_IN_0", "Web_IN_1", "Worker_IN_1")} | {
        ("svc/svc-stag", "Web_IN_0"), ("svc/svc-stag", "Web_IN_1")}, "no bar for pending or earlier-run instances"
    prod = [b for b in bars if b["deployment"] == "svc/svc-prod"]
    stag = [b for b in bars if b["deployment"] == "svc/svc-stag"]
    assert roll_report.most_down_at_once(prod) == (1, 2), "a bar ending as the next starts does not overlap it"
    assert roll_report.most_down_at_once(stag) == (2, 2)


def test_report_names_every_instance_escapes_service_text_and_is_self_contained():
    text = roll_report.render(state())
    tags, visible = check_report(text)
    assert "svg" in tags and "table" in tags and "style" in tags
    for inst in state()["instances"].values():
        assert inst["instance"] in visible
    assert "<script>" not in text and 'src="http' not in text, "the service's text is escaped"
    assert HOSTILE in visible, "and shown as text"
    assert "Rolling reboot" in visible and "rebooted" in visible
    assert "most upgrade domains down at once" in visible and "2 (per deployment" in visible
    assert "makespan" in visible and "40.0s" in visible, "first request to the last end"
    assert "upgrade domain 0" in visible and "upgrade domain 2" in visible
    assert "\u2715" in visible, "the failure is marked on its bar"


def test_operation_words_follow_the_roll():
    for kind, done in (("reimage", "reimaged"), ("rebuild", "rebuilt")):
        _tags, visible = check_report(roll_report.render(state(kind)))
        assert "Rolling %s" % kind in visible and done in visible
        assert "reboot" not in visible.lower()


def test_a_roll_with_nothing_sent_still_renders(tmp_path):
    empty = state()
    for inst in empty["instances"].values():
        inst.update(outcome="pending", start=None, end=None, error=None, resumed=False)
    _tags, visible = check_report(roll_report.render(empty))
    assert "no reboot was sent to this deployment" in visible


def test_written_atomically_and_readable_by_the_owner_only(tmp_path):
    path = roll_report.write(state(), str(tmp_path / "new" / "roll.html"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700
    assert os.listdir(tmp_path / "new") == ["roll.html"], "no temporary file left behind"
    check_report(open(path, encoding="utf-8").read())


def test_bars_split_into_operation_and_recovery_the_lower_bound_and_health_checks_are_drawn():
    s = state()
    prod = s["instances"]
    prod["svc/svc-prod/web_in_0"]["operation_end"] = T0 + 4   # then recovered until T0 + 10
    prod["svc/svc-prod/worker_in_0"]["operation_end"] = T0 + 8  # then recovered until T0 + 12
    s["health_checks"] = [{"at": T0 - 1, "when": "before the roll", "healthy": True, "sentence": "health gate: ok"},
                          {"at": T0 + 13, "when": "after its batch", "healthy": False, "host": "h-Web_IN_0",
                           "deployment": "svc/svc-prod", "sentence": "health gate: https://h/x answered 503"}]
    bars = roll_report.bars(s)
    web = next(b for b in bars if b["instance"] == "Web_IN_0" and b["deployment"] == "svc/svc-prod")
    assert web["operation_end"] == T0 + 4
    # prod: batch 0 = operations 4 + 4 and the last one's recovery 4; batch 1 = 8 + 6 (no split known): 26 s.
    # stag: 30 + 15 = 45 s; the roll's bound is the slower deployment's.
    assert roll_report.lower_bound([b for b in bars if b["deployment"] == "svc/svc-prod"]) == 26.0
    assert roll_report.lower_bound(bars) == 45.0
    page = roll_report.render(s)
    check_report(page)
    assert page.count('class="bar-recovery"') == 2
    assert "the operation took 4.0s, the recovery to ReadyRole 6.0s" in page
    assert "makespan / lower bound = %.2f" % (40.0 / 45.0) in page, "under 1: stag took two domains down at once"
    assert page.count('class="check-ok"') == 2 * 2, "the roll's own check on both timelines (line and dot)"
    assert page.count('class="check-failed"') == 2, "the instance's check on its deployment's timeline only"
    assert "after its batch: health gate: https://h/x answered 503" in page
    # The table fits 1,400 px: a fixed layout no wider, and long words (request ids, errors) wrap.
    assert "max-width:1400px;table-layout:fixed" in page and "overflow-wrap:anywhere" in page
