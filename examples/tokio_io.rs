//! Concurrent file I/O with tokio inside dataflow tasks.
//!
//! The orchestrator runs in `#[tokio::main]`; the taskweave runtime is built with
//! that tokio runtime's handle, so task bodies await `tokio::fs`. The example writes
//! its own input (`--files N` files of generated text, default 200, in a directory
//! under the system's temp dir), then per file a task reads it and a dataflow task
//! counts its words; a tree of merge tasks combines the counts, and a last task writes
//! the result file. A progress bar on standard error follows the counting. The result
//! is checked against a direct sequential computation, and the directory is removed.
//!
//! ```text
//! cargo run --release --example tokio_io -- [--files N]
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use taskweave::{Runtime, Task};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Counts = HashMap<String, u64>;

/// Counts merged per merge task.
const MERGE_FAN_IN: usize = 16;

fn files_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--files") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                eprintln!("--files takes a positive number");
                std::process::exit(2)
            }),
        None => 200,
    }
}

/// Removes the working directory however the example ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A vocabulary of pronounceable made-up words.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ta", "sk", "we", "ave", "flo", "dat", "run", "ti", "me", "ko", "li", "ne", "por", "zu",
        "qi", "on",
    ];
    let mut rng = Rng(7);
    let mut words: Vec<String> = (0..600)
        .map(|_| {
            (0..1 + rng.below(3))
                .map(|_| SYLLABLES[rng.below(16) as usize])
                .collect()
        })
        .collect();
    words.sort();
    words.dedup();
    words
}

/// The text of file `index`: sentences of Zipf-ish distributed words.
fn generate_text(index: usize, vocabulary: &[String]) -> String {
    let mut rng = Rng(1000 + index as u64);
    let words = 2_000 + rng.below(6_000) as usize;
    let mut text = String::with_capacity(words * 6);
    let mut sentence = 0;
    for w in 0..words {
        // Cubing a uniform number favours the first words of the vocabulary.
        let u = rng.below(1 << 20) as f64 / (1 << 20) as f64;
        let word = &vocabulary[(u * u * u * vocabulary.len() as f64) as usize];
        if sentence == 0 {
            let mut chars = word.chars();
            let first = chars.next().expect("words are not empty");
            text.extend(first.to_uppercase());
            text.push_str(chars.as_str());
        } else {
            text.push_str(word);
        }
        sentence += 1;
        if sentence > 4 && rng.below(8) == 0 {
            text.push('.');
            sentence = 0;
        } else if rng.below(12) == 0 {
            text.push(',');
        }
        text.push(if w % 14 == 13 { '\n' } else { ' ' });
    }
    text
}

/// Words are runs of letters, compared in lower case.
fn count_words(text: &str) -> Counts {
    let mut counts = Counts::new();
    for word in text.split(|c: char| !c.is_alphabetic()) {
        if !word.is_empty() {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    counts
}

fn merge(parts: Vec<Counts>) -> Counts {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for part in parts {
        for (word, n) in part {
            *total.entry(word).or_default() += n;
        }
    }
    total
}

/// The result file: one `word<TAB>count` line per word, most frequent first.
fn render(counts: &Counts) -> String {
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    rows.iter().map(|(w, n)| format!("{w}\t{n}\n")).collect()
}

fn bar(len: usize, prefix: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{bar:40.cyan/blue}] {pos}/{len} files {elapsed}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_prefix(prefix)
}

fn file_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("input-{index:05}.txt"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let files = files_arg();
    let dir =
        TempDir(std::env::temp_dir().join(format!("taskweave-tokio-io-{}", std::process::id())));
    tokio::fs::create_dir_all(&dir.0).await?;
    // Task bodies can await tokio timers and I/O: the workers enter this runtime.
    let rt = Runtime::builder()
        .workers(2)
        .tokio_handle(tokio::runtime::Handle::current())
        .build();

    // 1. The input: each file generated and written by a task.
    let vocabulary = Arc::new(vocabulary());
    let writing = bar(files, "writing");
    let mut writes = Vec::with_capacity(files);
    for i in 0..files {
        let (path, vocabulary, writing) =
            (file_path(&dir.0, i), vocabulary.clone(), writing.clone());
        let write = rt
            .try_task_async(async move {
                let text = generate_text(i, &vocabulary);
                tokio::fs::write(&path, text.as_bytes()).await?;
                writing.inc(1);
                Ok::<usize, std::io::Error>(text.len())
            })
            .name(format!("write input {i}"))
            .await;
        writes.push(write);
    }
    let bytes: usize = taskweave::when_all(writes).await?.iter().sum();
    writing.finish();

    // 2. The graph: read (tokio::fs) → count words → merge tree → write the result.
    let started = Instant::now();
    let counting = bar(files, "counting");
    let mut level: Vec<Task<Counts>> = Vec::with_capacity(files);
    for i in 0..files {
        let path = file_path(&dir.0, i);
        let read = rt
            .try_task_async(async move { tokio::fs::read_to_string(&path).await })
            .name(format!("read {i}"))
            .await;
        let counting = counting.clone();
        let count = rt
            .dataflow(read, move |text: String| {
                let counts = count_words(&text);
                counting.inc(1);
                counts
            })
            .name(format!("count {i}"))
            .await;
        level.push(count);
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let mut next = Vec::with_capacity(level.len().div_ceil(MERGE_FAN_IN));
        let mut rest = level.into_iter();
        loop {
            let group: Vec<Task<Counts>> = rest.by_ref().take(MERGE_FAN_IN).collect();
            if group.is_empty() {
                break;
            }
            let merged = rt
                .dataflow(group, merge)
                .name(format!("merge level {depth} #{}", next.len()))
                .await;
            next.push(merged);
        }
        level = next;
    }
    let total = level.pop().expect("at least one file");
    let out_path = dir.0.join("word-counts.tsv");
    let result_path = out_path.clone();
    let written = rt
        .dataflow_async(total, move |counts: Counts| async move {
            let text = render(&counts);
            tokio::fs::write(&result_path, text.as_bytes()).await?;
            Ok::<_, std::io::Error>((counts, text.len()))
        })
        .name("write result")
        .await;
    let (counts, result_bytes) = written.await??;
    let elapsed = started.elapsed();
    counting.finish();

    // 3. Check: a direct sequential computation, and the result file read back.
    let mut direct = Counts::new();
    for i in 0..files {
        let text = std::fs::read_to_string(file_path(&dir.0, i))?;
        direct = merge(vec![direct, count_words(&text)]);
    }
    assert_eq!(
        counts, direct,
        "the dataflow word counts differ from the direct ones"
    );
    let from_file: Counts = std::fs::read_to_string(&out_path)?
        .lines()
        .map(|line| {
            let (word, n) = line.split_once('\t').expect("word<TAB>count");
            (word.to_owned(), n.parse().expect("a count"))
        })
        .collect();
    assert_eq!(
        from_file, direct,
        "the result file differs from the direct counts"
    );

    let words: u64 = counts.values().sum();
    let mut top: Vec<(&String, &u64)> = counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|(w, n)| format!("{w} {n}"))
        .collect();
    println!(
        "tokio_io: {files} files, {:.1} MB, {words} words ({} distinct) counted in {:.1} ms \
         ({:.0} MB/s; merge tree depth {depth}); result {result_bytes} bytes; matches the direct count",
        bytes as f64 / 1e6,
        counts.len(),
        elapsed.as_secs_f64() * 1e3,
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
    );
    println!("tokio_io: most frequent: {}", top.join(", "));
    println!("{}", rt.stats());

    rt.shutdown().await;
    // Dropping the last handle joins the workers: keep that off the async threads.
    tokio::task::spawn_blocking(move || drop(rt)).await?;
    drop(dir);
    Ok(())
}
