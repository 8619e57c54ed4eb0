//! Engine benchmarks: the `standard` workload of WORKLOAD.md and more workloads beside it, the
//! measurements (`measure`), and the `engine-bench` binary that prints them.

pub mod measure;
pub mod workloads;
