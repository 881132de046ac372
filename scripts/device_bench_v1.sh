#!/usr/bin/env bash
# Issue 6 v1 bench on an H100: tuned = the v1 study (staged-tiles space). Historical names: see
# README (its vllm/vllm-paper/baseline/paper are today's baseline/paper/simple/simple-pf).
exec bash scripts/device_bench_study.sh results/issue6-h100/v1/studies.db h100-llama-3.1-8b-tp1-bf16-blk16-default h100
