//! Progress without the dashboard (`--no-tui`, or stdout not a terminal): a one-line bar
//! redrawn on a terminal, and a one-line summary every few seconds on the output.

use std::io::Write;
use std::time::{Duration, Instant};

use hone_telemetry::Event;

use crate::format::{duration, metric, si, thousands};
use crate::state::{Alert, DashboardState};

/// One line that says where the run is: step, throughput, return, losses, ETA.
pub fn summary_line(state: &DashboardState) -> Option<String> {
    if state.is_rlhf() {
        let r = state.last_rlhf()?;
        let baseline = r
            .baseline_reward_mean
            .map_or(String::new(), |b| format!(" (baseline {})", metric(b)));
        return Some(format!(
            "step {}{}  reward {}{baseline}  kl {}  len {:.1}  tok/s {}{}",
            thousands(r.step),
            progress_suffix(state),
            metric(r.reward_mean),
            metric(r.kl_to_reference),
            r.response_length_mean,
            si(r.tokens_per_s),
            eta_suffix(state),
        ));
    }
    let u = state.last_update()?;
    let ret = match (
        u.episodes.return_mean,
        u.episodes.return_min,
        u.episodes.return_max,
    ) {
        (Some(mean), Some(lo), Some(hi)) => format!("{mean:.1} [{lo:.1}, {hi:.1}]"),
        (Some(mean), ..) => format!("{mean:.1}"),
        _ => "-".to_owned(),
    };
    let sps10 = state.rates_over(10.0).map_or("-".to_owned(), |r| si(r.sps));
    let l = &u.losses;
    Some(format!(
        "step {}{}  sps {} (10 s {sps10})  return {ret}  pg {}  v {}  ent {}  kl {}  clip {}{}",
        thousands(u.global_step),
        progress_suffix(state),
        si(u.sps),
        metric(l.policy_loss),
        metric(l.value_loss),
        metric(l.entropy),
        metric(l.approx_kl),
        metric(l.clipfrac),
        eta_suffix(state),
    ))
}

fn progress_suffix(state: &DashboardState) -> String {
    match state.progress() {
        Some((done, total)) if total > 0 => format!(
            " / {} ({:.1}%)",
            thousands(total),
            100.0 * done as f64 / total as f64
        ),
        _ => String::new(),
    }
}

fn eta_suffix(state: &DashboardState) -> String {
    state
        .eta_s()
        .map_or(String::new(), |s| format!("  ETA {}", duration(s)))
}

/// A text bar of `width` cells for a fraction.
fn bar(ratio: f64, width: usize) -> String {
    let filled = ((ratio.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

/// Writes the bar (when `bar_out` is a terminal) and the periodic summaries.
pub struct TextProgress<O: Write, B: Write> {
    out: O,
    bar_out: Option<B>,
    bar_width: usize,
    state: DashboardState,
    summary_every: Duration,
    bar_every: Duration,
    last_summary: Option<Instant>,
    last_bar: Option<Instant>,
    bar_shown: bool,
    alerts_reported: Vec<std::mem::Discriminant<Alert>>,
    non_finite_reported: usize,
}

impl<O: Write, B: Write> TextProgress<O, B> {
    /// `bar_out`: where the redrawn bar goes (a terminal), `None` for summaries only;
    /// `columns`: that terminal's width.
    pub fn new(out: O, bar_out: Option<B>, columns: usize, summary_every: Duration) -> Self {
        Self {
            out,
            bar_out,
            bar_width: columns.clamp(40, 200) - 1,
            state: DashboardState::default(),
            summary_every,
            bar_every: Duration::from_millis(250),
            last_summary: None,
            last_bar: None,
            bar_shown: false,
            alerts_reported: Vec::new(),
            non_finite_reported: 0,
        }
    }

    pub fn state(&self) -> &DashboardState {
        &self.state
    }

    /// Takes one event; output errors (a closed pipe) are ignored: progress is not worth
    /// failing a run for.
    pub fn observe(&mut self, event: &Event) {
        self.state.apply(event);
        let _ = self.write_for(event);
    }

    fn write_for(&mut self, event: &Event) -> std::io::Result<()> {
        match event {
            Event::Update(_) | Event::Rlhf(_) => {
                let summary_due = self
                    .last_summary
                    .is_none_or(|t| t.elapsed() >= self.summary_every);
                if summary_due {
                    self.last_summary = Some(Instant::now());
                    if let Some(line) = summary_line(&self.state) {
                        self.print(&line)?;
                    }
                }
                self.report_new_alerts()?;
                if self.last_bar.is_none_or(|t| t.elapsed() >= self.bar_every) {
                    self.last_bar = Some(Instant::now());
                    self.draw_bar()?;
                }
            }
            Event::Finish { .. } => {
                if let Some(line) = summary_line(&self.state) {
                    self.print(&line)?;
                }
                self.clear_bar()?;
            }
            Event::Start(_) | Event::Checkpoint { .. } => {}
        }
        Ok(())
    }

    /// Each kind of alert once, when it first appears (NaN/Inf: each metric once).
    fn report_new_alerts(&mut self) -> std::io::Result<()> {
        for alert in self.state.alerts() {
            let new = match &alert {
                Alert::NonFinite { .. } => {
                    let non_finite = self
                        .state
                        .alerts()
                        .iter()
                        .filter(|a| matches!(a, Alert::NonFinite { .. }))
                        .count();
                    let new = non_finite > self.non_finite_reported;
                    self.non_finite_reported = non_finite;
                    new
                }
                other => {
                    let kind = std::mem::discriminant(other);
                    let new = !self.alerts_reported.contains(&kind);
                    if new {
                        self.alerts_reported.push(kind);
                    }
                    new
                }
            };
            if new {
                self.print(&format!("alert: {alert}"))?;
            }
        }
        Ok(())
    }

    /// A summary line, with the bar cleared first and redrawn after.
    fn print(&mut self, line: &str) -> std::io::Result<()> {
        self.clear_bar()?;
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        self.draw_bar()
    }

    fn clear_bar(&mut self) -> std::io::Result<()> {
        if let (Some(out), true) = (&mut self.bar_out, self.bar_shown) {
            write!(out, "\r\x1b[2K")?;
            out.flush()?;
            self.bar_shown = false;
        }
        Ok(())
    }

    fn draw_bar(&mut self) -> std::io::Result<()> {
        let Some(out) = &mut self.bar_out else {
            return Ok(());
        };
        let Some((done, total)) = self.state.progress() else {
            return Ok(());
        };
        if self.state.finish.is_some() {
            return Ok(());
        }
        let ratio = if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        };
        let rate = if self.state.is_rlhf() {
            String::new()
        } else {
            self.state
                .rates_over(10.0)
                .map_or(String::new(), |r| format!("  {} sps", si(r.sps)))
        };
        let eta = self
            .state
            .eta_s()
            .map_or(String::new(), |s| format!("  ETA {}", duration(s)));
        let text = format!(
            " {:5.1}%  {}/{}{rate}{eta}",
            100.0 * ratio,
            thousands(done),
            thousands(total)
        );
        let bar_cells = self
            .bar_width
            .saturating_sub(text.chars().count() + 2)
            .max(10);
        write!(out, "\r\x1b[2K[{}]{text}", bar(ratio, bar_cells))?;
        out.flush()?;
        self.bar_shown = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{start, update};

    #[test]
    fn summaries_are_periodic_and_the_last_one_is_always_printed() {
        let mut out = Vec::new();
        {
            let mut progress =
                TextProgress::new(&mut out, None::<Vec<u8>>, 80, Duration::from_secs(3600));
            progress.observe(&start(2048));
            for i in 1..=4 {
                progress.observe(&Event::Update(update(i, i as f64, 1.0)));
            }
            progress.observe(&Event::Finish {
                global_step: 2048,
                reason: "done".into(),
            });
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("step 512 / 2,048 (25.0%)  sps 512"),
            "{text}"
        );
        assert!(lines[0].contains("return 21.0 [11.0, 41.0]"), "{text}");
        assert!(lines[0].contains("ETA 0:03"), "{text}");
        assert!(
            lines[1].starts_with("step 2,048 / 2,048 (100.0%)"),
            "{text}"
        );
        assert!(!lines[1].contains("ETA"), "{text}");
    }

    #[test]
    fn the_bar_is_redrawn_in_place_and_cleared_for_summaries() {
        let (mut out, mut term) = (Vec::new(), Vec::new());
        {
            let mut progress =
                TextProgress::new(&mut out, Some(&mut term), 80, Duration::from_secs(3600));
            progress.observe(&start(2048));
            progress.observe(&Event::Update(update(1, 1.0, 1.0)));
            progress.observe(&Event::Finish {
                global_step: 512,
                reason: "interrupted".into(),
            });
        }
        let term = String::from_utf8(term).unwrap();
        assert!(term.contains("\r\x1b[2K["), "{term:?}");
        assert!(term.contains("]  25.0%  512/2,048  512 sps"), "{term:?}");
        assert!(term.ends_with("\r\x1b[2K"), "cleared at the end: {term:?}");
        let first_bar = term.split("\r\x1b[2K").find(|s| s.contains('[')).unwrap();
        assert!(first_bar.chars().count() < 80, "{first_bar}");
        assert!(
            first_bar.chars().count() > 70,
            "fills the line: {first_bar}"
        );
    }

    #[test]
    fn alerts_are_printed_once_when_they_appear() {
        let mut out = Vec::new();
        {
            let mut progress = TextProgress::new(&mut out, None::<Vec<u8>>, 80, Duration::ZERO);
            progress.observe(&start(100_000));
            for i in 1..=5 {
                let mut u = update(i, i as f64, 1.0);
                if i >= 3 {
                    u.losses.approx_kl = 0.2;
                }
                if i == 5 {
                    u.losses.policy_loss = f64::NAN;
                }
                progress.observe(&Event::Update(u));
            }
        }
        let text = String::from_utf8(out).unwrap();
        let alerts: Vec<&str> = text.lines().filter(|l| l.starts_with("alert:")).collect();
        assert_eq!(
            alerts,
            [
                "alert: approx_kl 0.2000 > 0.0500 (1 update over)",
                "alert: policy_loss is NaN/Inf (first at step 2560)"
            ],
            "{text}"
        );
    }
}
