#!/bin/bash
# Composer Capsules on a SageMaker notebook instance; started by sagemaker/on-start.sh at every
# start of the instance, as ec2-user.  Three facts of SageMaker shape it:
#
#  * only /home/ec2-user/SageMaker survives a stop: the conda environment lives there
#    ($VOLUME/.envs/composer-capsules), and so do your compositions ($VOLUME/.capsule);
#    the kernel registration (~/.local) and the Jupyter server's environment do not, so they
#    are redone at every start;
#  * the Jupyter server runs in its own conda environment, JupyterSystemEnv: the widgets'
#    front end (anywidget, jupyterlab_widgets) must be installed there too, at the kernel's
#    versions, or a widget shows "Failed to load model class 'AnyModel'";
#  * a lifecycle script is stopped after 5 minutes: creating the environment takes longer, so on
#    the first start (or when environment.yml changed) it runs in the background under nohup,
#    logging to $LOG.  Reload the JupyterLab page when the log ends with "ready".
#
#   setup.sh --start      what on-start.sh runs: --register now if the environment is ready,
#                         else --build in the background
#   setup.sh --build      create the environment from environment.yml, install the package, --register
#   setup.sh --register   register the kernel and put the front end into the server's environment
#
# DRY_RUN=1 prints every command that would change something instead of running it
# (tests/test_sagemaker.py); the paths below can be overridden the same way.
set -euo pipefail

VOLUME=${VOLUME:-/home/ec2-user/SageMaker}
REPO_DIR=${REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ENV_DIR=${ENV_DIR:-$VOLUME/.envs/composer-capsules}
CONDA_DIR=${CONDA_DIR:-/home/ec2-user/anaconda3}
SERVER_ENV=${SERVER_ENV:-$CONDA_DIR/envs/JupyterSystemEnv}
CAPSULE_HOME_DIR=${CAPSULE_HOME_DIR:-$VOLUME/.capsule}
LOG=${LOG:-$VOLUME/composer-capsules-setup.log}
KERNEL_NAME=composer-capsules
KERNEL_DISPLAY="Python 3 (Composer Capsules)"
READY="$ENV_DIR/.composer-capsules-ready"   # holds the checksum of the environment.yml it was built from
DRY_RUN=${DRY_RUN:-}

say() { printf 'composer-capsules: %s\n' "$*"; }
run() {
    if [[ -n $DRY_RUN ]]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

wanted_checksum() { sha256sum "$REPO_DIR/environment.yml" | cut -d' ' -f1; }
env_ready() { [[ -x $ENV_DIR/bin/python && -f $READY && $(cat "$READY") == "$(wanted_checksum)" ]]; }

conda_cmd() {
    # mamba solves conda-forge environments in a fraction of conda's time where it is installed
    if [[ -x $CONDA_DIR/bin/mamba ]]; then echo "$CONDA_DIR/bin/mamba"; else echo "$CONDA_DIR/bin/conda"; fi
}

build() {
    say "creating the conda environment in $ENV_DIR from $REPO_DIR/environment.yml (about 10 minutes)"
    run rm -rf "$ENV_DIR"
    run mkdir -p "$(dirname "$ENV_DIR")" "$CAPSULE_HOME_DIR"
    run "$(conda_cmd)" env create --quiet --prefix "$ENV_DIR" --file "$REPO_DIR/environment.yml"
    # editable: the code and data/ are read from the checkout on the volume; a git pull updates them
    run "$ENV_DIR/bin/python" -m pip install --quiet --no-deps -e "$REPO_DIR"
    register
    if [[ -n $DRY_RUN ]]; then
        echo "+ sha256sum environment.yml > $READY"
    else
        wanted_checksum > "$READY"
    fi
    run env CAPSULE_HOME="$CAPSULE_HOME_DIR" LD_LIBRARY_PATH="$ENV_DIR/lib" "$ENV_DIR/bin/python" -m capsule_lib.cli doctor \
        || say "capsule doctor found a problem: see its report above"
    say "ready: reload the JupyterLab page and choose the kernel \"$KERNEL_DISPLAY\""
}

register() {
    local versions anywidget widgets
    if [[ -x $ENV_DIR/bin/python ]]; then
        versions=$("$ENV_DIR/bin/python" -c \
            'from importlib.metadata import version as v; print(v("anywidget"), v("jupyterlab_widgets"))')
        read -r anywidget widgets <<< "$versions"
    else  # only in a dry run of --build, before the environment exists
        anywidget="<the kernel's anywidget>" widgets="<the kernel's jupyterlab_widgets>"
    fi
    say "front end for the widgets in the Jupyter server's environment: anywidget $anywidget, jupyterlab_widgets $widgets"
    run "$SERVER_ENV/bin/python" -m pip install --quiet "anywidget==$anywidget" "jupyterlab_widgets==$widgets"
    # The kernel keeps compositions on the volume, and finds conda's FluidSynth library.
    run "$ENV_DIR/bin/python" -m ipykernel install --user --name "$KERNEL_NAME" --display-name "$KERNEL_DISPLAY" \
        --env CAPSULE_HOME "$CAPSULE_HOME_DIR" --env LD_LIBRARY_PATH "$ENV_DIR/lib" --env LIBRARY_PATH "$ENV_DIR/lib"
}

start() {
    if env_ready; then
        register
        say "ready: kernel \"$KERNEL_DISPLAY\""
        return
    fi
    say "building the environment in the background (lifecycle scripts are stopped after 5 minutes); log: $LOG"
    if [[ -n $DRY_RUN ]]; then
        echo "+ nohup bash ${BASH_SOURCE[0]} --build >> $LOG 2>&1 < /dev/null &"
        build  # show the plan of the background job too
    else
        mkdir -p "$(dirname "$LOG")"
        nohup bash "${BASH_SOURCE[0]}" --build >> "$LOG" 2>&1 < /dev/null &
    fi
}

case "${1:-}" in
    --start) start ;;
    --build) build ;;
    --register) register ;;
    *) echo "usage: $0 --start | --build | --register" >&2; exit 2 ;;
esac
