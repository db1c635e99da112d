#!/usr/bin/env bash
# ctsync in a pipeline: the one script every workflow step calls.
#
#   ctsync-ci.sh plan    plan, keep the plan file and a Markdown summary (exit 1 only on error)
#   ctsync-ci.sh apply   apply the saved plan (or plan and apply) without asking
#   ctsync-ci.sh watch   status + drift plan + the last day's provisioning logs; exit 1 on trouble
#
# Environment: CTSYNC_CONFIG (default ctsync.yaml), CTSYNC_OUT (default ctsync-out, where the
# plan, its summary and the logs go), CTSYNC (the ctsync command, default ctsync).
# Signing in needs nothing here: in GitHub Actions, a tenant with `method: workload_identity`
# and no token_file asks the job's OIDC token itself (the job needs `id-token: write`).
set -euo pipefail

mode="${1:-}"
config="${CTSYNC_CONFIG:-ctsync.yaml}"
out="${CTSYNC_OUT:-ctsync-out}"
read -r -a ctsync <<< "${CTSYNC:-ctsync}"
mkdir -p "$out"

summary() {  # append Markdown to the job summary, when there is one
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$1" >> "$GITHUB_STEP_SUMMARY"; fi
}

fenced() {  # $1: title, $2: file with plain text
  printf '### %s\n\n```\n' "$1"
  cat "$2"
  printf '```\n\n'
}

case "$mode" in
  plan)
    set +e
    "${ctsync[@]}" plan -c "$config" --detailed-exitcode --out "$out/plan.json" > "$out/plan.txt"
    rc=$?
    set -e
    case "$rc" in
      0) verdict="No changes: both tenants of every link match the config." ;;
      2) verdict="Changes to apply on merge (reviewed below)." ;;
      *) verdict="ctsync plan failed (exit $rc)." ;;
    esac
    { printf '## ctsync plan\n\n%s\n\n' "$verdict"; fenced "Plan" "$out/plan.txt"; } > "$out/plan.md"
    summary "$out/plan.md"
    cat "$out/plan.txt"
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || exit 1
    ;;
  apply)
    if [ -f "$out/plan.json" ]; then
      # The saved plan is the approval: apply re-plans and refuses if anything moved.
      "${ctsync[@]}" apply -c "$config" "$out/plan.json" --auto-approve | tee "$out/apply.txt"
    else
      "${ctsync[@]}" apply -c "$config" --auto-approve | tee "$out/apply.txt"
    fi
    { printf '## ctsync apply\n\n'; fenced "Applied" "$out/apply.txt"; } > "$out/apply.md"
    summary "$out/apply.md"
    ;;
  watch)
    trouble=0
    "${ctsync[@]}" status -c "$config" > "$out/status.txt" || trouble=1
    set +e
    "${ctsync[@]}" plan -c "$config" --detailed-exitcode > "$out/drift.txt"
    rc=$?
    set -e
    # 2: the tenants drifted from the config (someone changed them by hand); 1: plan failed.
    [ "$rc" -eq 0 ] || trouble=1
    "${ctsync[@]}" logs -c "$config" --since 24h --summary > "$out/logs.txt" || trouble=1
    {
      printf '## ctsync watch\n\n'
      if [ "$trouble" -eq 0 ]; then printf 'All links healthy, no drift.\n\n'; else printf '**Trouble: see below.**\n\n'; fi
      fenced "Status" "$out/status.txt"
      fenced "Drift (plan)" "$out/drift.txt"
      fenced "Provisioning logs, last 24 h" "$out/logs.txt"
    } > "$out/watch.md"
    summary "$out/watch.md"
    cat "$out/status.txt" "$out/drift.txt" "$out/logs.txt"
    exit "$trouble"
    ;;
  *)
    echo "usage: ctsync-ci.sh plan|apply|watch" >&2
    exit 2
    ;;
esac
