#!/usr/bin/env bash
# Create the project's virtualenvs inside the checkout (idempotent) and link the collection path.
#   .venv         newest ansible-core we claim, plus the development tools
#   .venv-oldest  oldest ansible-core we claim (only with --oldest)
#   .venv-importer galaxy-importer, Galaxy's upload validator, with its own pins (only with --importer)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}

make_venv() {  # make_venv DIR REQUIREMENTS
  local dir=$1 req=$2 stamp
  stamp="$dir/.requirements.sha"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum "$req" | cut -d' ' -f1)" ]; then
    return 0
  fi
  echo "== creating $dir from $req"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  sha256sum "$req" | cut -d' ' -f1 > "$stamp"
}

make_venv .venv tests/requirements.txt
for arg in "$@"; do
  case $arg in
    --oldest) make_venv .venv-oldest tests/requirements-oldest.txt ;;
    --importer) make_venv .venv-importer tests/requirements-importer.txt ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

# ansible finds the collection through ANSIBLE_COLLECTIONS_PATH=tests/output/collections.
mkdir -p tests/output/collections/ansible_collections/azure_classic
ln -sfn "$root" tests/output/collections/ansible_collections/azure_classic/cloud_services
