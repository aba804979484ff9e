#!/usr/bin/env bash
# The whole test suite, from a fresh machine: bash scripts/test.sh
# Sets up .venv/, .venv-oldest/ and .venv-importer/ (galaxy-importer) inside the checkout, then runs, in order: ansible-test sanity and
# units, ansible-lint, the changelog lint, the docs lint and site build, the emulator's tests, the unit tests and the end-to-end tests
# (real ansible against the emulator; the built tarball through galaxy-importer) on the newest ansible-core we claim, the molecule scenario, and the
# end-to-end tests again on the oldest. Set QUICK=1 to skip ansible-test sanity (the slowest step) while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/bootstrap.sh --oldest --importer
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/tests/output/collections"
export ASM_RECORDINGS="${ASM_RECORDINGS:-$root/../shared/reference/asm/recordings}"
export PYTHONDONTWRITEBYTECODE=1
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

# Nothing the tests run may create or remove anything in the user's own home (~/.ansible: collections, caches,
# ansible-test's venvs; molecule's cache): they get a home inside the checkout, and the real one is checked after.
real_home=$HOME
home_snapshot() { find "$real_home/.ansible" "$real_home/.cache/molecule" -mindepth 1 2>/dev/null | sort || true; }
home_before=$(home_snapshot)
export HOME="$root/tests/output/home"
mkdir -p "$HOME"

# ansible-test wants the collection at .../ansible_collections/<namespace>/<name> and reads git.
work="$root/tests/output/ansible-test/ansible_collections/azure_classic/cloud_services"
rm -rf "$root/tests/output/ansible-test"
mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$work")
(cd "$work" && git init -q && git add -A)
pip_version=$(python - <<'PY'
import re, ansible_test, pathlib
text = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
mkdir -p "$HOME/.ansible/test/cache"
cp scripts/ansible-test-pip-standin.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

if [ -z "${QUICK:-}" ]; then
  step "ansible-test sanity"
  (cd "$work" && ansible-test sanity --venv --python 3.11 --color no)
fi
step "ansible-test units"
(cd "$work" && ASM_RECORDINGS="$ASM_RECORDINGS" ansible-test units --venv --python 3.11 --color no --requirements)

step "ansible-lint (production profile)"
ansible-lint --offline -q

step "antsibull-changelog lint"
antsibull-changelog lint

step "docs: antsibull-docs lint and the HTML docs site"
bash scripts/build-docs.sh

step "pytest: emulator, unit and end-to-end tests (ansible-core $(python -c 'import ansible; print(ansible.__version__)'))"
python -m pytest -q -n 2 -p no:cacheprovider tests/emulator_tests tests/unit tests/e2e tests/reliability

step "molecule: the rolling_reimage role against the emulator"
# Forget state from an earlier run of this checkout path (it would skip prepare, which starts the emulator).
molecule reset
molecule test
# molecule installs the collection under (the checkout's) ~/.ansible/collections; remove it so it never shadows
# the checkout in a later run.
rm -rf "$HOME/.ansible/collections/ansible_collections/azure_classic"

step "pytest: unit and end-to-end tests on the oldest ansible-core claimed"
PATH="$root/.venv-oldest/bin:$PATH" .venv-oldest/bin/python -m pytest -q -n 2 -p no:cacheprovider tests/unit tests/e2e
step "the user's home is as it was"
if [ "$(home_snapshot)" != "$home_before" ]; then
  echo "the test suite changed $real_home/.ansible or $real_home/.cache/molecule:" >&2
  diff <(echo "$home_before") <(home_snapshot) >&2 || true
  exit 1
fi
step "done"
