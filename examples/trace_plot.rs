//! Plots a taskweave Chrome trace (`Trace::to_chrome_json`, e.g. from
//! `paged_attention --trace FILE`) as an SVG: one row per lane (workers, other threads,
//! device cores) with its busy slices coloured by task kind, the workers' utilisation
//! per time bucket as stacked bars (one colour per worker; the stack is the share of
//! all workers' time spent polling), the custom lanes' mean utilisation as a line, and
//! the ready-queue depth.
//!
//! ```text
//! cargo run --release --example trace_plot -- trace.json out.svg
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

/// Width of the whole picture and of its margins, in pixels.
const WIDTH: f64 = 1400.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 80.0;
const ROW: f64 = 18.0;
const ROW_GAP: f64 = 4.0;
const PANEL: f64 = 150.0;
/// Time buckets in the utilisation panel.
const BUCKETS: usize = 200;
/// Task kinds that get their own colour; the rest share the last one.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
const WORKER_SHADES: [&str; 4] = ["#4e79a7", "#a0cbe8", "#2f4b7c", "#7aa6d6"];

#[derive(Clone, Copy, PartialEq)]
enum LaneKind {
    Worker,
    Other,
    Custom,
}

struct Slice {
    start: f64,
    end: f64,
    name: String,
    kind: usize,
}

struct Lane {
    label: String,
    kind: LaneKind,
    slices: Vec<Slice>,
}

/// A slice's kind: the words of its name that hold no digit ("dma K s3 b2" → "dma K").
fn kind_of(name: &str) -> String {
    let words: Vec<&str> = name
        .split_whitespace()
        .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .collect();
    if words.is_empty() {
        "task".to_owned()
    } else {
        words.join(" ")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A time in µs, with a unit that suits `step`.
fn time_label(us: f64, step: f64) -> String {
    if step >= 1e6 {
        format!("{:.0} s", us / 1e6)
    } else if step >= 1e5 {
        format!("{:.1} s", us / 1e6)
    } else if step >= 1e3 {
        format!("{:.0} ms", us / 1e3)
    } else if step >= 1e2 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

/// A round tick step (1, 2 or 5 × 10^k) giving about `ticks` ticks over `span`.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1e-3)
}

struct Parsed {
    lanes: Vec<Lane>,
    kinds: Vec<(String, f64)>,
    queue: Vec<(f64, f64)>,
    t0: f64,
    t1: f64,
}

fn parse(json: &str) -> Result<Parsed, String> {
    let root: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let events = root["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array: not a Chrome trace")?;
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut by_tid: BTreeMap<i64, Vec<(f64, f64, String)>> = BTreeMap::new();
    let mut queue = Vec::new();
    for event in events {
        let tid = event["tid"].as_i64();
        match event["ph"].as_str() {
            Some("M") if event["name"] == "thread_name" => {
                if let (Some(tid), Some(name)) = (tid, event["args"]["name"].as_str()) {
                    names.insert(tid, name.to_owned());
                }
            }
            Some("X") => {
                let (Some(tid), Some(ts), Some(dur)) =
                    (tid, event["ts"].as_f64(), event["dur"].as_f64())
                else {
                    continue;
                };
                let name = event["name"].as_str().unwrap_or("?").to_owned();
                by_tid.entry(tid).or_default().push((ts, ts + dur, name));
            }
            Some("C") => {
                if let (Some(ts), Some(depth)) =
                    (event["ts"].as_f64(), event["args"]["depth"].as_f64())
                {
                    queue.push((ts, depth));
                }
            }
            _ => {}
        }
    }
    let t0 = by_tid
        .values()
        .flatten()
        .map(|s| s.0)
        .fold(f64::INFINITY, f64::min);
    let t1 = by_tid
        .values()
        .flatten()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if !t0.is_finite() {
        return Err("the trace has no slices (X events)".to_owned());
    }
    // Every worker lane is shown, busy or not; other lanes only when they have slices.
    for (tid, name) in &names {
        if name.starts_with("worker ") {
            by_tid.entry(*tid).or_default();
        }
    }
    let mut kind_index: HashMap<String, usize> = HashMap::new();
    let mut kinds: Vec<(String, f64)> = Vec::new();
    let mut lanes = Vec::new();
    for (tid, mut slices) in by_tid {
        let label = names
            .get(&tid)
            .cloned()
            .unwrap_or_else(|| format!("tid {tid}"));
        let kind = if label.starts_with("worker ") {
            LaneKind::Worker
        } else if label == "other threads" {
            LaneKind::Other
        } else {
            LaneKind::Custom
        };
        slices.sort_by(|a, b| a.0.total_cmp(&b.0));
        let slices = slices
            .into_iter()
            .map(|(start, end, name)| {
                let k = kind_of(&name);
                let next = kind_index.len();
                let index = *kind_index.entry(k.clone()).or_insert(next);
                if index == kinds.len() {
                    kinds.push((k, 0.0));
                }
                kinds[index].1 += end - start;
                Slice {
                    start: start - t0,
                    end: end - t0,
                    name,
                    kind: index,
                }
            })
            .collect();
        lanes.push(Lane {
            label,
            kind,
            slices,
        });
    }
    let order = |k: LaneKind| match k {
        LaneKind::Worker => 0,
        LaneKind::Other => 1,
        LaneKind::Custom => 2,
    };
    lanes.sort_by_key(|l| order(l.kind));
    let queue = queue
        .into_iter()
        .map(|(ts, depth)| (ts - t0, depth))
        .filter(|&(ts, _)| ts >= 0.0 && ts <= t1 - t0)
        .collect();
    Ok(Parsed {
        lanes,
        kinds,
        queue,
        t0: 0.0,
        t1: t1 - t0,
    })
}

/// Each lane's busy time per bucket, as a fraction of the bucket.
fn bucket_utilisation(lane: &Lane, span: f64) -> Vec<f64> {
    let width = span / BUCKETS as f64;
    let mut busy = vec![0.0; BUCKETS];
    for slice in &lane.slices {
        let first = ((slice.start / width) as usize).min(BUCKETS - 1);
        let last = ((slice.end / width) as usize).min(BUCKETS - 1);
        for (b, bucket) in busy.iter_mut().enumerate().take(last + 1).skip(first) {
            let (lo, hi) = (b as f64 * width, (b + 1) as f64 * width);
            *bucket += (slice.end.min(hi) - slice.start.max(lo)).max(0.0);
        }
    }
    busy.iter().map(|b| (b / width).min(1.0)).collect()
}

/// Adjacent slices of one lane drawn as one rectangle.
struct Run<'a> {
    x0: f64,
    x1: f64,
    count: usize,
    first: &'a Slice,
    /// Busy µs per task kind.
    busy: Vec<(usize, f64)>,
}

impl<'a> Run<'a> {
    fn new(slice: &'a Slice, x0: f64, x1: f64) -> Self {
        Run {
            x0,
            x1,
            count: 1,
            first: slice,
            busy: vec![(slice.kind, slice.end - slice.start)],
        }
    }

    fn add(&mut self, slice: &Slice, x1: f64) {
        self.x1 = self.x1.max(x1);
        self.count += 1;
        let busy = slice.end - slice.start;
        match self.busy.iter_mut().find(|(k, _)| *k == slice.kind) {
            Some((_, b)) => *b += busy,
            None => self.busy.push((slice.kind, busy)),
        }
    }

    fn draw(mut self, svg: &mut String, y: f64, parsed: &Parsed, colour: &[&str]) {
        self.busy.sort_by(|a, b| b.1.total_cmp(&a.1));
        let tip = if self.count == 1 {
            format!(
                "{} ({:.1} µs)",
                self.first.name,
                self.first.end - self.first.start
            )
        } else {
            let kinds: Vec<String> = self
                .busy
                .iter()
                .map(|(k, b)| format!("{} {b:.1} µs", parsed.kinds[*k].0))
                .collect();
            format!("{} slices: {}", self.count, kinds.join(", "))
        };
        let _ = writeln!(
            svg,
            r#"<rect x="{:.2}" y="{y:.1}" width="{:.2}" height="{ROW}" fill="{}"><title>{}</title></rect>"#,
            self.x0,
            (self.x1 - self.x0).max(0.5),
            colour[self.busy[0].0],
            escape(&tip)
        );
    }
}

fn render(parsed: &Parsed, title: &str) -> String {
    let span = (parsed.t1 - parsed.t0).max(1e-3);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + t / span * plot_w;
    // Colours: the nine kinds with the most busy time get their own.
    let mut ranked: Vec<usize> = (0..parsed.kinds.len()).collect();
    ranked.sort_by(|&a, &b| parsed.kinds[b].1.total_cmp(&parsed.kinds[a].1));
    let mut colour = vec![PALETTE[PALETTE.len() - 1]; parsed.kinds.len()];
    for (rank, &k) in ranked.iter().enumerate().take(PALETTE.len() - 1) {
        colour[k] = PALETTE[rank];
    }

    let lanes_top = 70.0;
    let lanes_h = parsed.lanes.len() as f64 * (ROW + ROW_GAP);
    let util_top = lanes_top + lanes_h + 40.0;
    let queue_top = util_top + PANEL + 40.0;
    let has_queue = !parsed.queue.is_empty();
    let axis_y = if has_queue {
        queue_top + PANEL * 0.6
    } else {
        util_top + PANEL
    };
    let legend_top = axis_y + 40.0;
    let legend_rows = ranked.len().min(PALETTE.len()).div_ceil(5);
    let height = legend_top + legend_rows as f64 * 18.0 + 20.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let slices: usize = parsed.lanes.iter().map(|l| l.slices.len()).sum();
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="44" fill="#555">{} lanes, {slices} slices over {}; right: each lane's busy share</text>"##,
        parsed.lanes.len(),
        time_label(span, span / 10.0)
    );

    // Time grid, shared by all panels.
    let step = nice_step(span, 10.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" x2="{gx:.1}" y1="{lanes_top}" y2="{axis_y}" stroke="#e4e4e4"/><text x="{gx:.1}" y="{ty:.0}" text-anchor="middle" fill="#333">{label}</text>"##,
            gx = x(t),
            ty = axis_y + 16.0,
            label = time_label(t, step)
        );
        t += step;
    }

    // Panel 1: one row per lane.
    for (row, lane) in parsed.lanes.iter().enumerate() {
        let y = lanes_top + row as f64 * (ROW + ROW_GAP);
        let busy: f64 = lane.slices.iter().map(|s| s.end - s.start).sum();
        let _ = writeln!(
            svg,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text><rect x="{LEFT}" y="{y:.1}" width="{plot_w:.1}" height="{ROW}" fill="#f3f3f3"/><text x="{:.0}" y="{:.1}" fill="#333">{:.0}%</text>"##,
            LEFT - 8.0,
            y + ROW - 5.0,
            escape(&lane.label),
            WIDTH - RIGHT + 8.0,
            y + ROW - 5.0,
            100.0 * busy / span
        );
        // Slices closer than half a pixel to the run before them merge into it, so a
        // dense trace stays a small file: runs of one kind at any width, and slivers
        // (under 2 px) of different kinds, drawn in the colour of the kind that was
        // busy longest.
        let mut run: Option<Run> = None;
        for slice in &lane.slices {
            let (x0, x1) = (x(slice.start), x(slice.end));
            if let Some(r) = &mut run {
                let same_kind = r.busy.len() == 1 && r.busy[0].0 == slice.kind;
                let slivers = r.x1 - r.x0 < 2.0 && x1 - x0 < 2.0;
                if x0 - r.x1 < 0.5 && (same_kind || slivers) {
                    r.add(slice, x1);
                    continue;
                }
            }
            if let Some(r) = run.take() {
                r.draw(&mut svg, y, parsed, &colour);
            }
            run = Some(Run::new(slice, x0, x1));
        }
        if let Some(r) = run {
            r.draw(&mut svg, y, parsed, &colour);
        }
    }

    // Panel 2: utilisation per bucket.
    let workers: Vec<&Lane> = parsed
        .lanes
        .iter()
        .filter(|l| l.kind == LaneKind::Worker)
        .collect();
    let custom: Vec<&Lane> = parsed
        .lanes
        .iter()
        .filter(|l| l.kind == LaneKind::Custom)
        .collect();
    let y_of = |fraction: f64| util_top + PANEL * (1.0 - fraction);
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.0}" font-weight="bold">Utilisation per {} bucket</text><rect x="{LEFT}" y="{util_top}" width="{plot_w:.1}" height="{PANEL}" fill="none" stroke="#999"/>"##,
        util_top - 8.0,
        time_label(span / BUCKETS as f64, span / BUCKETS as f64)
    );
    for fraction in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{right:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{label_x:.0}" y="{label_y:.1}" text-anchor="end">{percent:.0}%</text>"##,
            right = WIDTH - RIGHT,
            y = y_of(fraction),
            label_x = LEFT - 8.0,
            label_y = y_of(fraction) + 4.0,
            percent = fraction * 100.0
        );
    }
    let bucket_w = plot_w / BUCKETS as f64;
    let worker_util: Vec<Vec<f64>> = workers
        .iter()
        .map(|l| bucket_utilisation(l, span))
        .collect();
    for b in 0..BUCKETS {
        let mut stacked = 0.0;
        for (w, util) in worker_util.iter().enumerate() {
            let share = util[b] / workers.len() as f64;
            if share > 0.0 {
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                    LEFT + b as f64 * bucket_w,
                    y_of(stacked + share),
                    bucket_w,
                    PANEL * share,
                    WORKER_SHADES[w % WORKER_SHADES.len()]
                );
            }
            stacked += share;
        }
    }
    if !custom.is_empty() {
        let util: Vec<Vec<f64>> = custom.iter().map(|l| bucket_utilisation(l, span)).collect();
        let points: Vec<String> = (0..BUCKETS)
            .map(|b| {
                let mean = util.iter().map(|u| u[b]).sum::<f64>() / custom.len() as f64;
                format!(
                    "{:.1},{:.1}",
                    LEFT + (b as f64 + 0.5) * bucket_w,
                    y_of(mean)
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#f28e2b" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    let mut key_x = LEFT + 320.0;
    for (w, lane) in workers.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<rect x="{key_x:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
            util_top - 18.0,
            WORKER_SHADES[w % WORKER_SHADES.len()],
            key_x + 14.0,
            util_top - 8.0,
            escape(&lane.label)
        );
        key_x += 90.0;
    }
    if !custom.is_empty() {
        let _ = writeln!(
            svg,
            r##"<line x1="{key_x:.0}" x2="{x2:.0}" y1="{y:.0}" y2="{y:.0}" stroke="#f28e2b" stroke-width="2"/><text x="{text_x:.0}" y="{text_y:.0}">mean of the {n} other lanes{what}</text>"##,
            x2 = key_x + 14.0,
            y = util_top - 13.0,
            text_x = key_x + 18.0,
            text_y = util_top - 8.0,
            n = custom.len(),
            what = if custom.iter().all(|l| l.label.starts_with("device ")) {
                " (device cores)"
            } else {
                ""
            }
        );
    }

    // Panel 3: ready-queue depth, if sampled.
    if has_queue {
        let h = PANEL * 0.6;
        let max = parsed.queue.iter().map(|q| q.1).fold(1.0f64, f64::max);
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="{:.0}" font-weight="bold">Ready-queue depth (max {max:.0})</text><rect x="{LEFT}" y="{queue_top}" width="{plot_w:.1}" height="{h}" fill="none" stroke="#999"/>"##,
            queue_top - 8.0
        );
        let points: Vec<String> = parsed
            .queue
            .iter()
            .map(|&(t, depth)| format!("{:.1},{:.1}", x(t), queue_top + h * (1.0 - depth / max)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#e15759" stroke-width="1.5"/>"##,
            points.join(" ")
        );
    }

    // Legend: the task kinds by busy time.
    for (i, &k) in ranked.iter().take(PALETTE.len()).enumerate() {
        let label = if i == PALETTE.len() - 1 && ranked.len() > PALETTE.len() {
            format!("{} other kinds", ranked.len() - (PALETTE.len() - 1))
        } else {
            parsed.kinds[k].0.clone()
        };
        let (col, row) = (i % 5, i / 5);
        let (lx, ly) = (LEFT + col as f64 * 220.0, legend_top + row as f64 * 18.0);
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{ly:.0}">{}</text>"#,
            ly - 10.0,
            colour[k],
            lx + 14.0,
            escape(&label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: trace_plot TRACE.json OUT.svg");
        std::process::exit(2);
    };
    let json = std::fs::read_to_string(input).unwrap_or_else(|e| {
        eprintln!("cannot read {input}: {e}");
        std::process::exit(1)
    });
    let parsed = parse(&json).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        std::process::exit(1)
    });
    let title = format!(
        "taskweave trace: {}",
        std::path::Path::new(input)
            .file_name()
            .map_or(input.as_str(), |n| n.to_str().unwrap_or("trace"))
    );
    let svg = render(&parsed, &title);
    std::fs::write(output, &svg).unwrap_or_else(|e| {
        eprintln!("cannot write {output}: {e}");
        std::process::exit(1)
    });
    let slices: usize = parsed.lanes.iter().map(|l| l.slices.len()).sum();
    println!(
        "trace_plot: {} lanes, {slices} slices, {:.3} ms → {output} ({} KB)",
        parsed.lanes.len(),
        (parsed.t1 - parsed.t0) / 1e3,
        svg.len() / 1024
    );
}
