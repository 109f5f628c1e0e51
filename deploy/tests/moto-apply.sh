#!/usr/bin/env bash
# `terraform plan` + `apply` of a scratch copy of examples/complete against a
# local moto server; run by scripts/check-deploy, inside a network namespace
# of its own when it can (then loopback is brought up here).
#
#   moto-apply.sh EXAMPLE_DIR WORK_DIR
#
# Needs TF_MIRROR (provider mirror root) and TF_DATA_DIR in the environment.
# Writes WORK_DIR/moto-plan.json and WORK_DIR/moto-state.json; logs in
# WORK_DIR/moto*.log. moto is reset at the end instead of a destroy: nothing
# real exists.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/common.sh"
example="$1"
work="$2"
: "${TF_MIRROR:?}" "${TF_DATA_DIR:?}"

if [ "${MOTO_ISOLATED:-}" = yes ]; then
  ip link set lo up
fi
port=$(free_port)
MOTO_ACM_VALIDATION_WAIT=0 "$CACHE/deploy-venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
wait_http "http://127.0.0.1:$port/moto-api/" 60

sed "s#@MOTO@#http://127.0.0.1:$port#" "$ROOT/deploy/tests/moto_override.tf.tmpl" >"$example/zz_moto_override.tf"
terraform -chdir="$example" init -backend=false -plugin-dir="$TF_MIRROR" -input=false -no-color \
  >"$work/moto-init.log" 2>&1 || { cat "$work/moto-init.log"; exit 1; }

started=$(date +%s)
terraform -chdir="$example" plan -out="$work/moto.tfplan" -input=false -no-color \
  -var "hook_zip_path=$ROOT/deploy/terraform/tests/fixtures/hook.zip" >"$work/moto-plan.log" 2>&1 \
  || { grep -E -A12 '^Error' "$work/moto-plan.log" || tail -n 40 "$work/moto-plan.log"; exit 1; }
terraform -chdir="$example" show -json "$work/moto.tfplan" >"$work/moto-plan.json"
if ! terraform -chdir="$example" apply -auto-approve -input=false -no-color -parallelism=20 "$work/moto.tfplan" \
  >"$work/moto-apply.log" 2>&1; then
  grep -E -A12 '^Error' "$work/moto-apply.log" || tail -n 40 "$work/moto-apply.log"
  exit 1
fi
echo "plan and apply took $(( $(date +%s) - started ))s; $(grep -E '^Apply complete' "$work/moto-apply.log")"
terraform -chdir="$example" show -json -no-color >"$work/moto-state.json"

curl -fsS -X POST "http://127.0.0.1:$port/moto-api/reset" >/dev/null
echo "moto reset (no destroy: nothing real was created)"
