//! Criterion benchmarks of the workloads (`cargo bench -p benches`): one iteration is a whole
//! timed stream on an engine prepared outside the measurement, so the figures compare with
//! `engine-bench`'s ns/op divided by the stream's length.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::workloads::{prepare, resolution_setup, workload, Workload};
use criterion::{criterion_group, criterion_main, Criterion};

fn stream(workload: &Workload, iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        let (mut engine, mut stream) = prepare(workload);
        let mut events = Vec::with_capacity(1 << 12);
        let started = Instant::now();
        while let Some(step) = stream.step(&mut engine, &mut events) {
            let _ = black_box(step);
            events.clear();
        }
        total += started.elapsed();
    }
    total
}

fn workloads(c: &mut Criterion) {
    let mut group = c.benchmark_group("workloads");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for name in ["standard", "many-markets", "cancel-heavy"] {
        let workload = workload(name).expect("a workload");
        group.bench_function(name, |b| b.iter_custom(|n| stream(&workload, n)));
    }
    group.bench_function("resolution-100k-positions", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let (mut engine, resolve) = resolution_setup(100_000);
                let mut events = Vec::with_capacity(1 << 20);
                let started = Instant::now();
                let _ = black_box(engine.apply(&resolve, &mut events));
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
