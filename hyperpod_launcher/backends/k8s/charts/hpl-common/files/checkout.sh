#!/bin/bash
# initContainer: check the job's code out once per pod, at the commit the launcher pinned
# (static file of the chart). A git token, when the job has one, comes from the pod's Secret
# through HPL_GIT_TOKEN and reaches git through a credential helper: never the URL or argv.
set -euo pipefail

: "${HPL_GIT_REPO:?set by the chart}" "${HPL_CODE_DIR:?set by the chart}"
branch="${HPL_GIT_BRANCH:-}"
commit="${HPL_GIT_COMMIT:-}"
export GIT_TERMINAL_PROMPT=0

git_cfg=()
if [[ -n "${HPL_GIT_TOKEN:-}" ]]; then
  # The helper prints the variable's value when git asks; the value is never in argv.
  # shellcheck disable=SC2016
  git_cfg=(-c credential.helper= -c 'credential.helper=!f() { echo username=x-access-token; echo "password=$HPL_GIT_TOKEN"; }; f')
fi

if [[ -d "$HPL_CODE_DIR/.git" ]]; then
  echo "checkout: $HPL_CODE_DIR already holds a clone (the pod restarted); keeping it"
else
  clone_args=(clone --quiet)
  if [[ -n "$branch" && -z "$commit" ]]; then
    clone_args+=(--branch "$branch")
  fi
  # The folder is the (empty) mounted volume: git clones into an empty folder.
  git ${git_cfg[@]+"${git_cfg[@]}"} "${clone_args[@]}" -- "$HPL_GIT_REPO" "$HPL_CODE_DIR"
fi

cd "$HPL_CODE_DIR"
if [[ -n "$commit" ]]; then
  git ${git_cfg[@]+"${git_cfg[@]}"} checkout --quiet --detach "$commit"
fi
echo "checkout: $(git rev-parse HEAD) of $HPL_GIT_REPO in $HPL_CODE_DIR"
