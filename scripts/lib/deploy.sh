# Functions for scripts/check-deploy: sourced, not run, after common.sh.
#
#   deploy_venvs        .cache/deploy-venv (botocore, moto, jsonschema, PyYAML,
#                       python-hcl2) and .cache/checkov-venv, each rebuilt when
#                       its deploy/tests/requirements*.txt changes; sets
#                       DEPLOY_PY and CHECKOV
#   find_tf_mirror      sets TF_MIRROR to the root of a local provider mirror
#                       holding hashicorp/aws (no registry is reachable)
#   isolated CMD...     runs CMD in a new network namespace with only
#                       loopback (unshare -n), so nothing it does can reach
#                       another host; plain CMD where that is not possible
#   tf_copy DIR         a fresh copy of deploy/{terraform,pipeline,contract.json}
#                       under DIR (the sources stay free of .terraform, state
#                       and lock files)

[ -n "${ROOT:-}" ] || {
  echo "deploy.sh: source scripts/lib/common.sh first" >&2
  return 1
}

# A venv under .cache, (re)built when its requirements file changes.
_deploy_venv() {
  local dir="$1" requirements="$2" stamp want
  stamp="$dir/.requirements.sha256"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing $(basename "$requirements") into $dir (first run only)"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed (install python3-venv)"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 \
      || die "pip could not install $requirements from PyPI"
    echo "$want" >"$stamp"
  fi
}

# Both venvs, installed side by side (the first run downloads a few hundred
# MB from PyPI); sets DEPLOY_PY and CHECKOV.
deploy_venvs() {
  local a b
  _deploy_venv "$CACHE/deploy-venv" "$ROOT/deploy/tests/requirements.txt" &
  a=$!
  _deploy_venv "$CACHE/checkov-venv" "$ROOT/deploy/tests/requirements-checkov.txt" &
  b=$!
  wait "$a" || die "could not install the deploy check tools"
  wait "$b" || die "could not install checkov"
  DEPLOY_PY="$CACHE/deploy-venv/bin/python"
  CHECKOV="$CACHE/checkov-venv/bin/checkov"
}

# The AWS provider from a local mirror (the layout `terraform providers
# mirror` writes: <root>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/).
# TF_PLUGIN_MIRROR wins; then the usual places; then a bounded search.
find_tf_mirror() {
  TF_MIRROR=""
  local candidate found
  for candidate in "${TF_PLUGIN_MIRROR:-}" /opt/tf-plugins "$HOME/.terraform.d/plugins" \
    /usr/local/share/terraform/plugins /usr/share/terraform/plugins "$CACHE/tf-plugins"; do
    [ -n "$candidate" ] || continue
    if compgen -G "$candidate/registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*" >/dev/null; then
      TF_MIRROR="$candidate"
      return 0
    fi
  done
  found="$(find / -xdev -maxdepth 8 -path /proc -prune -o -type f -name 'terraform-provider-aws*' \
    -path '*/registry.terraform.io/hashicorp/aws/*' -print 2>/dev/null | head -n 1)"
  if [ -n "$found" ]; then
    TF_MIRROR="${found%%/registry.terraform.io/*}"
    return 0
  fi
  return 1
}

# unshare -n works for root (and where user namespaces are allowed).
_ISOLATION=""
isolation_available() {
  if [ -z "$_ISOLATION" ]; then
    if command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
      _ISOLATION=yes
    else
      _ISOLATION=no
    fi
  fi
  [ "$_ISOLATION" = yes ]
}

isolated() {
  if isolation_available; then
    unshare -n "$@"
  else
    "$@"
  fi
}

tf_copy() {
  local dir="$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$ROOT/deploy" && tar cf - --exclude=.terraform --exclude='*.tfstate*' \
    --exclude=.terraform.lock.hcl --exclude='*_override.tf' terraform pipeline contract.json) \
    | (cd "$dir" && tar xf -)
}

# Terraform settings for every call: no update check, no prompts, a CLI
# configuration of our own (the machine's may point at a registry).
tf_env() {
  mkdir -p "$CACHE/tf"
  printf 'disable_checkpoint = true\n' >"$CACHE/tf/terraform.rc"
  export TF_CLI_CONFIG_FILE="$CACHE/tf/terraform.rc"
  export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
}
