#!/bin/bash
# SageMaker notebook instance lifecycle configuration, "Start notebook" script, for Composer Capsules.
#
# Attach it to the instance (console: Lifecycle configurations > Create > Start notebook: paste this
# file; or: aws sagemaker create-notebook-instance-lifecycle-config
#   --notebook-instance-lifecycle-config-name composer-capsules
#   --on-start Content="$(base64 -w0 sagemaker/on-start.sh)").  No "Create notebook" script is needed.
#
# SageMaker runs it as root at every start and stops it after 5 minutes.  It only clones the
# repository onto the persistent volume (first start) and hands over to sagemaker/setup.sh in that
# checkout, which registers the kernel at once or, on the first start, builds the environment in the
# background (log: /home/ec2-user/SageMaker/composer-capsules-setup.log).
#
# Set REPO_URL below to the repository you use (the address here is a placeholder), or attach the
# repository to the instance as its Git repository, cloned to /home/ec2-user/SageMaker/composer-capsules.
# DRY_RUN=1 prints what would change instead of changing it.
set -euo pipefail

REPO_URL=${REPO_URL:-https://github.com/YOUR-ACCOUNT/composer-capsules.git}
NB_USER=${NB_USER:-ec2-user}
VOLUME=${VOLUME:-/home/ec2-user/SageMaker}
REPO_DIR=${REPO_DIR:-$VOLUME/composer-capsules}
DRY_RUN=${DRY_RUN:-}
export PATH="/usr/local/bin:/usr/bin:/bin:$PATH"  # lifecycle scripts start with a minimal PATH

# Everything runs as the notebook user, so the files on the volume stay theirs.
as_user() {
    if [[ $(id -u) -eq 0 && -z $DRY_RUN ]]; then
        sudo -u "$NB_USER" -H env VOLUME="$VOLUME" REPO_DIR="$REPO_DIR" "$@"
    else
        env VOLUME="$VOLUME" REPO_DIR="$REPO_DIR" DRY_RUN="$DRY_RUN" "$@"
    fi
}

if [[ ! -f $REPO_DIR/sagemaker/setup.sh ]]; then
    if [[ -n $DRY_RUN ]]; then
        echo "+ git clone --depth 1 $REPO_URL $REPO_DIR"
        exit 0
    fi
    as_user git clone --depth 1 "$REPO_URL" "$REPO_DIR"
fi
as_user bash "$REPO_DIR/sagemaker/setup.sh" --start
