"""`python3 scripts/wb_with.py "NAME=VALUE ..." ARGS...`: `workbench ARGS` with module constants of
workbench.kernel.variant set first (each to the type it has), so that a device recipe can A/B a launch
rule in one call on one host, e.g. `wb_with.py "SCHED_FIT_FILL=2" bench --suite e2e ...`."""
import sys

import workbench.kernel.variant as variant


def main() -> None:
    for kv in sys.argv[1].split():
        name, value = kv.split("=", 1)
        if not hasattr(variant, name):
            sys.exit(f"wb_with: workbench.kernel.variant has no {name}")
        setattr(variant, name, type(getattr(variant, name))(float(value)))
    from workbench.cli import main as workbench
    sys.argv = ["workbench"] + sys.argv[2:]
    workbench()


if __name__ == "__main__":
    main()
