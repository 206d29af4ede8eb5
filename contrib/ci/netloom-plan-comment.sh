#!/usr/bin/env bash
# Writes the pull-request comment for a topology change: netloom's plan as
# Markdown, or, when there is none, why (the diagnostics, file:line:col).
#
#   netloom-plan-comment.sh COMMENT.md PATH...
#
# NETLOOM          the netloom binary (default: netloom on PATH)
# NETLOOM_PLAN_OUT also save the plan there, for `netloom apply FILE` after
#                  the merge (keep it as the job's artifact)
#
# Exit 0: the comment says what apply would do (changes or none); 1: netloom
# failed (bad files, a conflict, no access) and the comment says why. The
# job fails then, after the comment is written.
set -uo pipefail
if (($# < 2)); then
  echo "usage: $0 COMMENT.md PATH..." >&2
  exit 1
fi
out=$1
shift
netloom=${NETLOOM:-netloom}
args=(plan --format markdown --detailed-exitcode)
[ -n "${NETLOOM_PLAN_OUT:-}" ] && args+=(--out "$NETLOOM_PLAN_OUT")
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$netloom" "${args[@]}" "$@" >"$out" 2>"$err"
rc=$?
# Diagnostics may hold backticks: the fence is longer than any run in them.
fence() { printf '%s' "$(grep -o '`*' "$1" | awk '{ if (length > n) n = length } END { for (i = 0; i < (n < 2 ? 3 : n + 1); i++) printf "`" }')"; }
case $rc in
  0 | 2)
    if grep -q '^warning' "$err"; then
      f=$(fence "$err")
      { printf '\n<details><summary>warnings</summary>\n\n%s\n' "$f"; grep -v '^Saved this plan' "$err"; printf '%s\n</details>\n' "$f"; } >>"$out"
    fi
    [ "$rc" = 2 ] && echo "netloom: changes pending" >&2 || echo "netloom: no changes" >&2
    exit 0
    ;;
  *)
    f=$(fence "$err")
    {
      printf '### netloom plan failed (exit %s)\n\n' "$rc"
      cat "$out"
      printf '\n%s\n' "$f"
      cat "$err"
      printf '%s\n' "$f"
    } >"$out.new"
    mv "$out.new" "$out"
    cat "$err" >&2
    exit 1
    ;;
esac
