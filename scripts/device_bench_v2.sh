#!/usr/bin/env bash
# Issue 6 v2 bench on an H100 (before PDL): tuned = the v2 study (bench suite).
exec bash scripts/device_bench_study.sh results/issue6-h100/v2/studies.db h100-llama-3.1-8b-tp1-bf16-blk16-bench h100
