"""``kubevpc-operator`` / ``python -m kubevpc_operator``: run the operator with kopf.

Equivalent to ``kopf run -m kubevpc_operator.handlers`` with our settings (``config.Settings``)
parsed from the command line and ``KUBEVPC_*`` variables. It connects with ``KUBECONFIG`` (or the
in-cluster service account), so a local process with local agent endpoints works the same as the
in-cluster Deployment.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import kopf

from kubevpc_operator import config


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = config.Settings.from_args(args)
    except config.ConfigError as error:
        sys.exit(f"kubevpc-operator: {error}")
    config.activate(settings)  # before the handlers register (discovery mode, intervals)
    importlib.import_module("kubevpc_operator.handlers")
    kopf.configure(verbose=settings.verbose, debug=settings.debug)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=settings.liveness,
        memo=kopf.Memo(settings=settings),
    )


if __name__ == "__main__":
    main()
