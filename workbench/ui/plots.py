"""Plots written to files (matplotlib, Agg backend): bench efficiency and prefetch-distance curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any



def bench_plot(run: Any, path: str | Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for p in run.peers:
        pts = sorted((r.kv_bytes / 1e6, r.efficiency) for r in run.results if r.peer == p and r.efficiency)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=p, linestyle="none" if len(pts) < 2 else "-")
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="floor (read ceiling)")
    ax.set_xscale("log")
    ax.set_xlabel("KV bytes per decode step (MB)")
    ax.set_ylabel("efficiency = floor ÷ latency")
    ax.set_title(f"{run.gpu.get('name')} · {run.heads.get('model')} ({run.heads.get('num_heads')}/"
                 f"{run.heads.get('num_kv_heads')} d{run.heads.get('head_size')}) {run.dtype} · cold L2")
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (plots are written, never shown)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from workbench.errors import WorkbenchError
        raise WorkbenchError("--plot needs matplotlib: pip install matplotlib") from None
    return plt


def results_plot(res: Any, path: str | Path) -> Path:
    """Latency and demand L2 hit rate against prefetch distance, one line per layout."""
    plt = pyplot()
    from workbench.kernel.variant import Variant
    lines: dict[str, list[tuple[int, float, float]]] = {}
    for r in res.results:
        v = Variant.from_dict(r["variant"])
        # a layout = every knob but the distance (prefetch off joins each prefetching layout at 0)
        layout = v.with_(prefetch_distance=0).name.replace("-pf0", "")
        hit = (r.get("ncu") or {}).get("l2_demand_hit_rate", float("nan"))
        lines.setdefault(f"{layout} · {r['workload_label']}", []).append((v.prefetch_distance, r["median_us"], hit))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, pts in lines.items():
        pts.sort()
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax2.plot([p[0] for p in pts], [p[2] * 100 for p in pts], marker="o", label=name)
    ax1.set_xlabel("prefetch distance (tiles)"); ax1.set_ylabel("median latency (µs, cold L2)")
    ax2.set_xlabel("prefetch distance (tiles)"); ax2.set_ylabel("L2 hit rate on demand loads (%)")
    ax1.legend(fontsize=6); ax1.grid(alpha=.3); ax2.grid(alpha=.3)
    fig.suptitle(f"{res.gpu.get('name')} · driver {res.gpu.get('driver')}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
