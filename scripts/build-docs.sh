#!/usr/bin/env bash
# Lint the plugin and role documentation, then build the HTML docs site (plugin docs plus the guides in
# docs/docsite/rst) into tests/output/docsite/build/html. Run by scripts/test.sh; needs .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/tests/output/collections"
collection="$ANSIBLE_COLLECTIONS_PATH/ansible_collections/azure_classic/cloud_services"
dest="$root/tests/output/docsite"

(cd "$collection" && antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs=all \
   --disallow-unknown-collection-refs .)
rm -rf "$dest" && mkdir -m 0755 -p "$dest"
antsibull-docs sphinx-init --use-current --squash-hierarchy --lenient --fail-on-error --dest-dir "$dest" \
  azure_classic.cloud_services
python -m pip install --quiet --disable-pip-version-check -r "$dest/requirements.txt"
(cd "$dest" && ./build.sh)
test -s "$dest/build/html/index.html"
test -s "$dest/build/html/role_instance_reimage_module.html"
echo "docs site: $dest/build/html/index.html"
