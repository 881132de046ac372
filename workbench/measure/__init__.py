"""Workloads, the fp32 reference, checks, cold-L2 timing, the read ceiling, ncu and nsys."""
