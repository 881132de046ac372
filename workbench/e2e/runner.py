"""One backend's measurements, run IN A CHILD PROCESS: `python -m workbench.e2e.runner ARGS_JSON`.

One vLLM engine per process (one backend per engine: what vLLM loads into a process stays there).
ARGS_JSON is a `RunnerArgs`; the result is a `BackendResult` written to `args.out` after every grid
point (a killed child keeps what it measured) and its path printed as the last line of stdout.
Progress lines go to stderr, prefixed "[e2e]".

Per grid point (mode "measure"):
1. warm-up and correctness in one: `LLM.generate` on the point's prompts, greedy, 16 tokens,
   top-20 log-probabilities; keeps the ids and the log-probabilities of steps 0 and 1;
2. the timed run: the same prompts streamed through `llm.llm_engine` (add_request + step, DELTA
   outputs), every token stamped with its arrival time; throughput and ITL come from the window in
   which all sequences decode together (metrics.py).
Mode "profile" (under nsys, one process): per point, an NVTX range "wb_e2e:<label>" around
`profile_steps` steps of that all-decoding window; the parent reads the kernels inside it.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from typing import Any, Callable

from workbench.measure.clocks import ClockSampler, ClockStats

from .correctness import PointOutputs
from .grid import GridPoint, max_tokens, prompt_len, tokens_needed
from .metrics import decode_window
from .results import BackendResult, PointResult
from .runner_args import NVTX_PREFIX, RunnerArgs
from .settings import EngineSettings, weight_spec


def make_prompts(point: GridPoint, decode_steps: int, vocab_size: int, seed: int) -> list[list[int]]:
    """Random token ids, the same for every backend (seeded by the point), away from the special
    ids at the ends of the vocabulary."""
    rng = random.Random(seed * 1_000_003 + point.batch * 100_003 + point.context)
    n = prompt_len(point.context, decode_steps)
    lo, hi = min(100, vocab_size // 4), max(vocab_size - 300, vocab_size // 2)
    return [[rng.randrange(lo, hi) for _ in range(n)] for _ in range(point.batch)]


def _say(msg: str) -> None:
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


def _engine_input(ids: list[int]) -> Any:
    try:
        from vllm.inputs import tokens_input      # 0.26: an EngineInput, no re-rendering
        return tokens_input(ids)
    except ImportError:
        return {"prompt_token_ids": ids}


def _top(lp: Any) -> list[list[float]]:
    """One position's {token_id: Logprob} -> [[id, logprob], ...] best first."""
    if not lp:
        return []
    pairs = [[int(t), float(getattr(v, "logprob", v))] for t, v in lp.items()]
    return sorted(pairs, key=lambda x: -x[1])


def correctness_run(llm: Any, prompts: list[list[int]], steps: int, logprobs: int, positions: int) -> PointOutputs:
    from vllm import SamplingParams
    sp = SamplingParams(max_tokens=steps, temperature=0.0, ignore_eos=True, detokenize=False, logprobs=logprobs)
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], sp, use_tqdm=False)
    ids, tops = [], []
    for o in outs:
        c = o.outputs[0]
        ids.append([int(t) for t in c.token_ids])
        lps = c.logprobs or []
        tops.append([_top(lps[s]) for s in range(min(positions, len(lps)))])
    return PointOutputs(ids=ids, top_logprobs=tops)


def stream_run(llm: Any, prompts: list[list[int]], n_tokens: int, tag: str,
               on_step: Callable[[list[list[float]], list[str]], bool] | None = None
               ) -> tuple[list[list[float]], list[list[int]], float]:
    """Stream the batch through the engine; per sequence the arrival time of each token, its ids,
    and the wall time. on_step(times, request_ids) -> True aborts the remaining requests."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind
    engine = llm.llm_engine
    sp = SamplingParams(max_tokens=n_tokens, temperature=0.0, ignore_eos=True, detokenize=False,
                        output_kind=RequestOutputKind.DELTA)
    rids = [f"{tag}-{i}" for i in range(len(prompts))]
    index = {r: i for i, r in enumerate(rids)}
    times: list[list[float]] = [[] for _ in prompts]
    ids: list[list[int]] = [[] for _ in prompts]
    t_start = time.perf_counter()
    for rid, p in zip(rids, prompts):
        engine.add_request(rid, _engine_input(p), sp.clone())
    while engine.has_unfinished_requests():
        outs = engine.step()
        now = time.perf_counter()
        for o in outs:
            i = index.get(o.request_id)
            if i is None:
                continue
            new = list(o.outputs[0].token_ids) if o.outputs else []
            times[i].extend([now] * len(new))
            ids[i].extend(int(t) for t in new)
        if on_step is not None and on_step(times, rids):
            engine.abort_request([r for r in rids], internal=False)
            while engine.has_unfinished_requests():
                engine.step()
            break
    return times, ids, time.perf_counter() - t_start


class _ProfileWindow:
    """on_step for mode profile: an NVTX range around `steps` all-decoding steps (after a margin)."""

    def __init__(self, label: str, steps: int, margin: int = 2):
        self.label, self.steps, self.margin = label, steps, margin
        self.seen = 0
        self.opened_at: int | None = None
        self.done = False

    def __call__(self, times: list[list[float]], rids: list[str]) -> bool:
        if not all(times):
            return False
        self.seen += 1
        if self.opened_at is None and self.seen > self.margin:
            _nvtx_push(NVTX_PREFIX + self.label)
            self.opened_at = self.seen
        elif self.opened_at is not None and self.seen - self.opened_at >= self.steps:
            _nvtx_pop()
            self.done = True
            return True
        return False


def _nvtx_push(name: str) -> None:
    try:
        import torch
        torch.cuda.nvtx.range_push(name)
    except Exception:
        import nvtx
        nvtx.push_range(name)


def _nvtx_pop() -> None:
    try:
        import torch
        torch.cuda.nvtx.range_pop()
    except Exception:
        import nvtx
        nvtx.pop_range()


def _engine_info(llm: Any, settings: EngineSettings) -> dict[str, Any]:
    import torch
    import vllm
    info: dict[str, Any] = {"vllm": getattr(vllm, "__version__", "?"), "torch": torch.__version__,
                            "python": sys.version.split()[0], "pid": os.getpid()}
    try:
        from vllm.platforms import current_platform
        info["gpu"] = current_platform.get_device_name()
    except Exception as e:                       # NVML-less: the name is a label only
        info["gpu"] = f"? ({type(e).__name__})"
    vc = llm.llm_engine.vllm_config
    cc = vc.cache_config
    cap = getattr(cc, "kv_cache_size_tokens", None) or ((cc.num_gpu_blocks or 0) * settings.block_size)
    info.update(kv_cache_tokens=int(cap), num_gpu_blocks=cc.num_gpu_blocks,
                max_num_batched_tokens=vc.scheduler_config.max_num_batched_tokens,
                async_scheduling=getattr(vc.scheduler_config, "async_scheduling", None),
                cudagraph_mode_requested=str(vc.compilation_config.cudagraph_mode))
    try:                                          # what the worker resolved (a backend below FULL is demoted)
        info.update(llm.collective_rpc("wb_describe")[0])
    except Exception as e:
        info["describe_error"] = f"{type(e).__name__}: {e}"[:200]
    return info


def run(args: RunnerArgs) -> BackendResult:
    settings = EngineSettings.from_dict(args.settings)
    res = BackendResult.from_dict(args.previous) if args.previous else BackendResult(backend=args.backend)
    res.backend, res.status, res.reason = args.backend, "partial", ""
    res.started = res.started or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    res.points = [p for p in res.points if p.status in ("ok", "skipped")]
    res.save(args.out)
    try:
        import vllm
        from vllm import LLM
    except Exception as e:
        res.status, res.reason = "failed", f"vLLM is not importable here ({type(e).__name__}: {e})"[:500]
        res.save(args.out)
        return res
    _say(f"{args.backend}: vLLM {getattr(vllm, '__version__', '?')}, starting the engine ({args.mode})")
    t0 = time.perf_counter()
    try:
        llm = LLM(**settings.llm_kwargs(args.model_dir, args.backend))
    except Exception as e:
        res.status, res.reason = "failed", _why("the engine did not start", e)
        res.save(args.out)
        return res
    try:
        spec = weight_spec(settings.weights)
        if spec is not None:
            n = llm.collective_rpc("wb_redraw_weights", args=(settings.seed, spec[1], spec[0]))[0]
            _say(f"{args.backend}: weights redrawn ({settings.weights}, {n / 1e9:.2f} G values)")
        res.engine = _engine_info(llm, settings)
        res.engine["startup_s"] = round(time.perf_counter() - t0, 1)
        _say(f"{args.backend}: engine up in {res.engine['startup_s']} s; KV cache {res.engine['kv_cache_tokens']} "
             f"tokens; attention {res.engine.get('attention_backends', '?')}; "
             f"CUDA graphs {res.engine.get('cudagraph_mode', res.engine['cudagraph_mode_requested'])}")
        res.save(args.out)
        _measure_points(llm, args, settings, res)
    finally:
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:
            pass
    failed = [p.label for p in res.points if p.status == "failed"]
    res.status = "partial" if failed else "ok"
    res.reason = f"failed at {', '.join(failed)}" if failed else ""
    res.finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    res.save(args.out)
    return res


def _measure_points(llm: Any, args: RunnerArgs, settings: EngineSettings, res: BackendResult) -> None:
    cap = int(res.engine.get("kv_cache_tokens") or 0)
    mnbt = int(res.engine.get("max_num_batched_tokens") or settings.max_num_batched_tokens)
    done = res.done_labels()
    for d in args.points:
        p = GridPoint.from_dict(d)
        if p.label in done:
            continue
        pr = PointResult(batch=p.batch, context=p.context, prompt_len=prompt_len(p.context, args.decode_steps),
                         max_tokens=max_tokens(p, args.decode_steps, mnbt))
        need = tokens_needed(p, args.decode_steps, settings.block_size, mnbt)
        if cap and need > cap:
            pr.status, pr.reason = "skipped", f"needs {need} KV tokens, this engine's KV cache holds {cap}"
            _say(f"{args.backend} {p.label}: skipped ({pr.reason})")
            res.points.append(pr)
            res.save(args.out)
            continue
        prompts = make_prompts(p, args.decode_steps, args.vocab_size, args.prompt_seed)
        try:
            if args.mode == "profile":
                win = _ProfileWindow(p.label, args.profile_steps)
                with ClockSampler() as clk:
                    stream_run(llm, prompts, pr.max_tokens, f"prof-{p.label}", on_step=win)
                pr.clocks = clk.stats.to_dict()
                pr.window_steps = args.profile_steps if win.done else 0
                pr.status, pr.reason = ("ok", "") if win.done else ("failed", "the decode window never opened")
            else:
                t = time.perf_counter()
                pr.outputs = correctness_run(llm, prompts, args.correctness_steps, args.logprobs,
                                             args.logprob_positions)
                _say(f"{args.backend} {p.label}: warm-up + correctness {time.perf_counter() - t:.1f} s")
                with ClockSampler() as clk:     # two engines in turn may not run at one clock
                    times, ids, wall = stream_run(llm, prompts, pr.max_tokens, f"t-{p.label}")
                pr.generate_s = wall
                n = args.correctness_steps        # the same backend run twice: its own rounding noise
                pr.self_ids_match = sum(a[:n] == b[:n] for a, b in zip(ids, pr.outputs.ids)) / max(1, len(ids))
                w = decode_window(times)
                if w is None:
                    pr.status, pr.reason = "failed", "no window in which all sequences decode together"
                else:
                    pr.tok_s, pr.itl_mean_ms, pr.itl_p50_ms, pr.itl_p99_ms = w.tok_s, w.itl_mean_ms, w.itl_p50_ms, \
                        w.itl_p99_ms
                    pr.window_steps, pr.window_tokens = w.steps, w.tokens
                    pr.clocks = clk.between(w.t0, w.t1).to_dict()
                    if w.steps < args.decode_steps // 2:
                        pr.reason = f"short window: {w.steps} steps"
                    _say(f"{args.backend} {p.label}: {w.tok_s:.0f} tok/s, ITL mean {w.itl_mean_ms:.2f} ms "
                         f"p99 {w.itl_p99_ms:.2f} ms over {w.steps} steps; {ClockStats.from_dict(pr.clocks).short()}")
        except Exception as e:
            pr.status, pr.reason = "failed", _why("failed", e)
            _say(f"{args.backend} {p.label}: {pr.reason}")
            res.points.append(pr)
            res.save(args.out)
            if type(e).__name__ == "EngineDeadError":
                res.reason = "the engine died"
                break
            continue
        res.points.append(pr)
        res.save(args.out)


def _why(what: str, e: BaseException) -> str:
    tb = traceback.format_exception_only(type(e), e)
    last = (tb[-1] if tb else repr(e)).strip()
    return f"{what}: {last}"[:600]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m workbench.e2e.runner ARGS_JSON", file=sys.stderr)
        return 2
    args = RunnerArgs.load(argv[0])
    res = run(args)
    print(json.dumps({"result": args.out, "status": res.status}), flush=True)
    return 0 if res.status in ("ok", "partial") else 3


if __name__ == "__main__":
    sys.exit(main())
