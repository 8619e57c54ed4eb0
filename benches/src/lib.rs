//! Engine benchmarks: the `standard` workload of WORKLOAD.md and more workloads beside it, the
//! measurements (`measure`), and the `engine-bench` binary that prints them; and the server's
//! load generator (`loadgen`, driven by the `loadgen` binary).

pub mod loadgen;
pub mod measure;
pub mod workloads;
