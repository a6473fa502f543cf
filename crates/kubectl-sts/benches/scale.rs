//! Time per object of the model's joins and of the views built from whole-cluster listings, at
//! 1×, 10× and 100× of 3,000 StatefulSets (issue 15: "model time per object flat, within 2×,
//! from 1× to 100×").
//!
//! The objects come from `sts_model::fixtures::cluster::generate` (realistic namespaces: pods on
//! two revisions, leftover claims of scale-downs and of deleted StatefulSets, hyphen-ambiguous
//! claim names, Services, events). Each benchmark is measured by criterion; at the end two
//! tables give, per benchmark and size, the median time of one run divided by the number of
//! objects: the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: other load on the machine moves
//! it much less than wall time, though it still shares the caches) and the wall time.
//!
//! ```sh
//! cargo bench -p kubectl-sts --bench scale                    # 1× and 10×
//! STS_SCALE_SIZES=1,10,100 cargo bench -p kubectl-sts --bench scale   # and 100×: 3 M objects
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use kubectl_sts::cmd::{list, orphans};
use sts_model::fixtures::cluster::{Cluster, generate};
use sts_model::index::RevisionsByOwner;
use sts_model::orphans::{ClaimIndex, ClaimOrigin};
use sts_model::revision::History;

/// StatefulSets at 1×.
const BASE: usize = 3_000;

/// One sample: wall time and the thread's CPU time per iteration.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// (benchmark, size multiple) → (objects, every sample).
type Samples = BTreeMap<(&'static str, usize), (usize, Vec<Sample>)>;

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
static SAMPLES: Mutex<Samples> = Mutex::new(BTreeMap::new());

fn sizes() -> Vec<usize> {
    std::env::var("STS_SCALE_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("STS_SCALE_SIZES: {s:?} is not a number"))
                })
                .collect()
        })
        .unwrap_or_else(|| vec![1, 10])
}

/// Runs `f` `iters` times and records the wall and CPU time per iteration for the summary;
/// criterion gets the wall time.
fn timed<R>(
    name: &'static str,
    multiple: usize,
    objects: usize,
    mut f: impl FnMut() -> R,
) -> impl FnMut(u64) -> Duration {
    move |iters| {
        let (start, cpu_start) = (Instant::now(), thread_cpu_time());
        for _ in 0..iters {
            black_box(f());
        }
        let (elapsed, cpu) = (start.elapsed(), thread_cpu_time().saturating_sub(cpu_start));
        let n = u32::try_from(iters.max(1)).unwrap_or(u32::MAX);
        let per_iter = Sample {
            wall: elapsed / n,
            cpu: cpu / n,
        };
        let mut samples = SAMPLES.lock().unwrap_or_else(|e| e.into_inner());
        let entry = samples
            .entry((name, multiple))
            .or_insert_with(|| (objects, Vec::new()));
        entry.1.push(per_iter);
        elapsed
    }
}

/// A group whose throughput is objects per second; 10 samples (an iteration at 100× takes
/// seconds).
fn group<'c>(c: &'c mut Criterion, objects: usize, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(objects as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g
}

/// The objects of `cluster`, moved (not copied: at 100× they take gigabytes) into the list
/// command's input, which every benchmark reads.
fn list_input(cluster: Cluster) -> list::ListInput {
    list::ListInput {
        all_statefulsets: cluster.statefulsets,
        selected: None,
        pods: cluster.pods,
        claims: cluster.claims,
        services: cluster.services,
        revisions: cluster.revisions,
        events: cluster.events,
    }
}

fn bench_size(c: &mut Criterion, multiple: usize, objects: usize, input: &list::ListInput) {
    let id = BenchmarkId::from_parameter(format!("{multiple}x"));
    let now = sts_model::fixtures::now();
    let list_input = input;
    let (statefulsets, pods, claims) = (&input.all_statefulsets, &input.pods, &input.claims);

    let mut g = group(c, objects, "attribute every claim");
    g.bench_function(id.clone(), |b| {
        b.iter_custom(timed("attribute every claim", multiple, objects, || {
            let index = ClaimIndex::new(statefulsets, pods);
            claims
                .iter()
                .filter(|c| matches!(index.attribute(c), ClaimOrigin::Attributed(_)))
                .count()
        }))
    });
    g.finish();

    let mut g = group(c, objects, "find orphans");
    g.bench_function(id.clone(), |b| {
        b.iter_custom(timed("find orphans", multiple, objects, || {
            ClaimIndex::new(statefulsets, pods)
                .find_orphans(claims)
                .orphans
                .len()
        }))
    });
    g.finish();

    let mut g = group(c, objects, "history of every StatefulSet");
    g.bench_function(id.clone(), |b| {
        b.iter_custom(timed(
            "history of every StatefulSet",
            multiple,
            objects,
            || {
                let revisions = RevisionsByOwner::new(&input.revisions);
                statefulsets
                    .iter()
                    .filter_map(|s| History::new(s, revisions.of(s)).ok())
                    .map(|h| h.numbers().len())
                    .sum::<usize>()
            },
        ))
    });
    g.finish();

    let mut g = group(c, objects, "list view (list -A)");
    g.bench_function(id.clone(), |b| {
        b.iter_custom(timed("list view (list -A)", multiple, objects, || {
            list::build_view(list_input, now).items.len()
        }))
    });
    g.finish();

    let mut g = group(c, objects, "orphans view (orphans -A)");
    g.bench_function(id, |b| {
        b.iter_custom(timed(
            "orphans view (orphans -A)",
            multiple,
            objects,
            || {
                orphans::build_view(statefulsets, pods, claims, None, None)
                    .items
                    .len()
            },
        ))
    });
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sizes = sizes();
    for &multiple in &sizes {
        let start = Instant::now();
        let cluster = generate(BASE * multiple);
        eprintln!(
            "{multiple}x: {} StatefulSets, {} objects in all, generated in {:.1} s",
            cluster.statefulsets.len(),
            cluster.objects(),
            start.elapsed().as_secs_f64()
        );
        let objects = cluster.objects();
        bench_size(&mut c, multiple, objects, &list_input(cluster));
    }
    c.final_summary();

    let samples = SAMPLES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if samples.is_empty() {
        return; // `--list`, `--test` or a filter that matched nothing
    }
    let mut names: Vec<&str> = samples.keys().map(|(n, _)| *n).collect::<Vec<_>>();
    names.dedup();
    for (what, pick) in [
        (
            "thread CPU time",
            (|s: &Sample| s.cpu) as fn(&Sample) -> Duration,
        ),
        ("wall time", |s: &Sample| s.wall),
    ] {
        print_table(&samples, &names, &sizes, what, pick);
    }
}

/// One table of median `pick` time per object, per benchmark and size.
fn print_table(
    samples: &Samples,
    names: &[&'static str],
    sizes: &[usize],
    what: &str,
    pick: fn(&Sample) -> Duration,
) {
    println!("\nmedian {what} per object (ns); last column: largest size ÷ smallest");
    print!("{:<30}", "benchmark");
    for m in sizes {
        print!("  {:>9}", format!("{m}x"));
    }
    println!("  {:>7}", "ratio");
    for &name in names {
        print!("{name:<30}");
        let mut per_object = Vec::new();
        for m in sizes {
            match samples.get(&(name, *m)) {
                Some((objects, times)) if !times.is_empty() => {
                    let ns = median(times.iter().map(pick).collect()).as_nanos() as f64
                        / *objects as f64;
                    per_object.push(ns);
                    print!("  {ns:>9.1}");
                }
                _ => print!("  {:>9}", "-"),
            }
        }
        match (per_object.first(), per_object.last()) {
            (Some(first), Some(last)) if per_object.len() > 1 => {
                println!("  {:>7.2}", last / first)
            }
            _ => println!(),
        }
    }
}
