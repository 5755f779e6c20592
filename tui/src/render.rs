//! Drawing: a pure function of the run's state and the dashboard's own, so a fixed snapshot of
//! both gives a fixed screen (what the snapshot tests check).

use hone_telemetry::{RlhfEvent, UpdateEvent};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Clear, Dataset, Gauge, GraphType, LegendPosition, Paragraph, Sparkline,
    Tabs,
};

use crate::format::{bytes, duration, metric as num, si, thousands};
use crate::state::{Alert, DashboardState};
use crate::ui::{Metric, Mode, RlhfMetric, Tab, UiState};

const ACCENT: Color = Color::Cyan;
const BAND: Color = Color::DarkGray;
const SECOND: Color = Color::Yellow;

/// Draws the whole dashboard.
pub fn render(frame: &mut Frame, state: &DashboardState, ui: &UiState) {
    let [bar, header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_tab_bar(frame, bar, state, ui);
    render_header(frame, header, state);
    match ui.tab {
        Tab::Overview => render_overview(frame, body, state, ui),
        Tab::Losses => render_losses(frame, body, state, ui),
        Tab::Rlhf => render_rlhf(frame, body, state, ui),
        Tab::Log => render_log(frame, body, state, "Log · hone.log"),
    }
    render_footer(frame, footer, ui);
    if ui.help {
        render_help(frame, ui);
    }
    if ui.confirm_quit {
        render_confirm(frame);
    }
}

fn render_tab_bar(frame: &mut Frame, area: Rect, state: &DashboardState, ui: &UiState) {
    let mut flags = Vec::new();
    if state.paused && state.finish.is_none() {
        flags.push(Span::styled(" PAUSED ", Style::new().black().on_yellow()));
        flags.push(Span::raw(" "));
    }
    if ui.frozen {
        flags.push(Span::styled(
            " FROZEN ",
            Style::new().black().on_light_blue(),
        ));
        flags.push(Span::raw(" "));
    }
    let drops = format!("dropped events {} ", thousands(state.dropped_events));
    let drop_style = if state.dropped_events > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    flags.push(Span::styled(drops, drop_style));
    let flags = Line::from(flags).right_aligned();
    let [tabs_area, flags_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(flags.width() as u16)])
            .areas(area);
    let titles = Tab::ALL.iter().map(|t| t.title());
    let selected = Tab::ALL.iter().position(|&t| t == ui.tab);
    let tabs = Tabs::new(titles)
        .select(selected)
        .highlight_style(
            Style::new()
                .fg(ACCENT)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
        .divider("│");
    let [name, tabs_rest] =
        Layout::horizontal([Constraint::Length(6), Constraint::Min(0)]).areas(tabs_area);
    frame.render_widget(Span::styled(" hone ", Style::new().bold()), name);
    frame.render_widget(tabs, tabs_rest);
    frame.render_widget(flags, flags_area);
}

fn render_header(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let title = state
        .run
        .as_ref()
        .map_or(" (no run yet) ".to_owned(), |r| format!(" {} ", r.run));
    let block = Block::bordered().title(Span::styled(title, Style::new().bold()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [info, gauge] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);

    let field = |label: &str, value: String| {
        vec![
            Span::styled(format!("{label} "), Style::new().fg(Color::DarkGray)),
            Span::raw(value),
            Span::raw("   "),
        ]
    };
    let mut spans = Vec::new();
    if let Some(run) = &state.run {
        spans.extend(field("algorithm", run.algorithm.clone()));
        let target = if state.is_rlhf() { "model" } else { "env" };
        spans.extend(field(target, run.target.clone()));
        spans.extend(field("device", run.device.clone()));
    }
    let phase = state.phase();
    spans.push(Span::styled("phase ", Style::new().fg(Color::DarkGray)));
    let phase_style = match phase {
        crate::state::Phase::Training => Style::new().fg(Color::Green),
        crate::state::Phase::Paused | crate::state::Phase::Stopping => {
            Style::new().fg(Color::Yellow)
        }
        crate::state::Phase::Gone => Style::new().fg(Color::Red),
        _ => Style::new(),
    };
    spans.push(Span::styled(phase.to_string(), phase_style));
    spans.push(Span::raw("   "));
    spans.extend(field(
        "elapsed",
        state.elapsed_s().map_or("-".into(), duration),
    ));
    frame.render_widget(Line::from(spans), info);

    let (ratio, label) = match state.progress() {
        Some((done, total)) => {
            let ratio = if total == 0 {
                0.0
            } else {
                done as f64 / total as f64
            };
            let unit = if state.is_rlhf() {
                "RLHF steps"
            } else {
                "steps"
            };
            let eta = state
                .eta_s()
                .map_or("ETA -".to_owned(), |s| format!("ETA {}", duration(s)));
            (
                ratio,
                format!(
                    "{:.1}%  {} / {} {unit}  {eta}",
                    100.0 * ratio,
                    thousands(done),
                    thousands(total)
                ),
            )
        }
        None => (0.0, "no progress yet".to_owned()),
    };
    let gauge_widget = Gauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(label)
        .gauge_style(Style::new().fg(ACCENT).bg(Color::Black))
        .use_unicode(true);
    frame.render_widget(gauge_widget, gauge);
}

fn render_footer(frame: &mut Frame, area: Rect, ui: &UiState) {
    let window = match ui.window_s() {
        Some(s) => duration(s),
        None => "all".to_owned(),
    };
    let text = if let Some(message) = &ui.message {
        Line::from(Span::styled(
            format!(" {message}"),
            Style::new().fg(Color::Yellow),
        ))
    } else {
        let keys: &[(&str, &str)] = match ui.mode {
            Mode::Train => &[
                ("q", "quit"),
                ("p", "pause"),
                ("s", "checkpoint"),
                ("f", "freeze"),
                ("tab", "tabs"),
                ("←/→", "metric"),
                ("+/-", "window"),
                ("?", "help"),
            ],
            Mode::Monitor => &[
                ("q", "leave"),
                ("f", "freeze"),
                ("tab", "tabs"),
                ("←/→", "metric"),
                ("+/-", "window"),
                ("?", "help"),
            ],
        };
        let mut spans = vec![Span::raw(" ")];
        for (key, what) in keys {
            spans.push(Span::styled(*key, Style::new().fg(ACCENT).bold()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        spans.push(Span::styled(
            format!("window {window}"),
            Style::new().fg(Color::DarkGray),
        ));
        if ui.mode == Mode::Monitor {
            spans.push(Span::styled(
                "  monitor: read-only",
                Style::new().fg(Color::DarkGray),
            ));
        }
        Line::from(spans)
    };
    frame.render_widget(text, area);
}

fn render_overview(frame: &mut Frame, area: Rect, state: &DashboardState, ui: &UiState) {
    let log_rows = if area.height >= 30 { 8 } else { 0 };
    let [top, middle, log] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(9),
        Constraint::Length(log_rows),
    ])
    .areas(area);
    let [chart, throughput] =
        Layout::horizontal([Constraint::Percentage(68), Constraint::Percentage(32)]).areas(top);
    render_metric_chart(frame, chart, state, ui);
    render_throughput(frame, throughput, state);
    let [losses, system, health] = Layout::horizontal([
        Constraint::Percentage(30),
        Constraint::Percentage(32),
        Constraint::Percentage(38),
    ])
    .areas(middle);
    render_loss_table(frame, losses, state);
    render_system(frame, system, state);
    render_alerts(frame, health, state);
    if log_rows > 0 {
        render_log(frame, log, state, "Log · hone.log (tail)");
    }
}

fn metric_label(metric: Metric) -> &'static str {
    match metric {
        Metric::EpisodicReturn => "episodic return",
        Metric::EpisodeLength => "episode length",
        Metric::PolicyLoss => "policy loss",
        Metric::ValueLoss => "value loss",
        Metric::Entropy => "entropy",
        Metric::ApproxKl => "approx_kl",
        Metric::ClipFrac => "clipfrac",
        Metric::ExplainedVariance => "explained variance",
        Metric::LearningRate => "learning rate",
        Metric::GradNorm => "grad norm",
        Metric::Sps => "SPS",
    }
}

fn metric_value(metric: Metric, u: &UpdateEvent) -> Option<f64> {
    let l = &u.losses;
    match metric {
        Metric::EpisodicReturn => u.episodes.return_mean,
        Metric::EpisodeLength => u.episodes.length_mean,
        Metric::PolicyLoss => Some(l.policy_loss),
        Metric::ValueLoss => Some(l.value_loss),
        Metric::Entropy => Some(l.entropy),
        Metric::ApproxKl => Some(l.approx_kl),
        Metric::ClipFrac => Some(l.clipfrac),
        Metric::ExplainedVariance => Some(l.explained_variance),
        Metric::LearningRate => Some(l.learning_rate),
        Metric::GradNorm => Some(l.grad_norm),
        Metric::Sps => Some(u.sps),
    }
}

fn rlhf_label(metric: RlhfMetric) -> &'static str {
    match metric {
        RlhfMetric::Reward => "reward: sampled vs baseline",
        RlhfMetric::KlToReference => "KL to reference",
        RlhfMetric::ResponseLength => "response length",
        RlhfMetric::TokensPerS => "tokens/s",
        RlhfMetric::PolicyLoss => "policy loss",
    }
}

fn rlhf_value(metric: RlhfMetric, r: &RlhfEvent) -> Option<f64> {
    match metric {
        RlhfMetric::Reward => Some(r.reward_mean),
        RlhfMetric::KlToReference => Some(r.kl_to_reference),
        RlhfMetric::ResponseLength => Some(r.response_length_mean),
        RlhfMetric::TokensPerS => Some(r.tokens_per_s),
        RlhfMetric::PolicyLoss => r.policy_loss,
    }
}

/// A plotted series: x is the step; `band` is the (min, max) around each point where known.
#[derive(Default)]
struct Series {
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64, f64)>,
}

impl Series {
    fn push(&mut self, x: f64, y: Option<f64>, band: Option<(f64, f64)>) {
        if let Some(y) = y.filter(|y| y.is_finite()) {
            self.points.push((x, y));
        }
        if let Some((lo, hi)) = band.filter(|(lo, hi)| lo.is_finite() && hi.is_finite()) {
            self.band.push((x, lo, hi));
        }
    }

    /// At most `buckets` points: the mean of each bucket of x, the band's min and max.
    fn bucketed(self, buckets: usize) -> Series {
        let buckets = buckets.max(2);
        let Some(((x0, _), (x1, _))) = self.points.first().zip(self.points.last()) else {
            return self;
        };
        let (x0, x1) = (*x0, *x1);
        if self.points.len() <= buckets || x1 <= x0 {
            return self;
        }
        let width = (x1 - x0) / buckets as f64;
        let bucket = |x: f64| (((x - x0) / width) as usize).min(buckets - 1);
        let mut sums = vec![(0.0, 0.0, 0usize); buckets];
        for &(x, y) in &self.points {
            let b = &mut sums[bucket(x)];
            b.0 += x;
            b.1 += y;
            b.2 += 1;
        }
        let mut bands = vec![(0.0, f64::INFINITY, f64::NEG_INFINITY, 0usize); buckets];
        for &(x, lo, hi) in &self.band {
            let b = &mut bands[bucket(x.clamp(x0, x1))];
            b.0 += x;
            b.1 = b.1.min(lo);
            b.2 = b.2.max(hi);
            b.3 += 1;
        }
        Series {
            points: sums
                .into_iter()
                .filter(|b| b.2 > 0)
                .map(|(x, y, n)| (x / n as f64, y / n as f64))
                .collect(),
            band: bands
                .into_iter()
                .filter(|b| b.3 > 0)
                .map(|(x, lo, hi, n)| (x / n as f64, lo, hi))
                .collect(),
        }
    }

    fn bounds(&self, others: &[&Series]) -> Option<([f64; 2], [f64; 2])> {
        let mut xs = [f64::INFINITY, f64::NEG_INFINITY];
        let mut ys = [f64::INFINITY, f64::NEG_INFINITY];
        for series in std::iter::once(self).chain(others.iter().copied()) {
            for &(x, y) in &series.points {
                xs = [xs[0].min(x), xs[1].max(x)];
                ys = [ys[0].min(y), ys[1].max(y)];
            }
            for &(x, lo, hi) in &series.band {
                xs = [xs[0].min(x), xs[1].max(x)];
                ys = [ys[0].min(lo), ys[1].max(hi)];
            }
        }
        if !xs[0].is_finite() {
            return None;
        }
        if xs[1] <= xs[0] {
            xs = [xs[0] - 1.0, xs[0] + 1.0];
        }
        let pad = if ys[1] > ys[0] {
            0.05 * (ys[1] - ys[0])
        } else {
            (0.1 * ys[0].abs()).max(1e-6)
        };
        Some((xs, [ys[0] - pad, ys[1] + pad]))
    }
}

/// Updates inside the time window (the last `window_s` seconds of run time).
fn windowed_updates(
    state: &DashboardState,
    window_s: Option<f64>,
) -> impl Iterator<Item = &UpdateEvent> {
    let last = state.last_update().map_or(0.0, |u| u.elapsed_s);
    let from = window_s.map_or(f64::NEG_INFINITY, |w| last - w);
    state
        .updates()
        .iter()
        .map(|r| &r.event)
        .filter(move |u| u.elapsed_s >= from)
}

fn windowed_rlhf(
    state: &DashboardState,
    window_s: Option<f64>,
) -> impl Iterator<Item = &RlhfEvent> {
    let last = state.last_rlhf().map_or(0.0, |r| r.elapsed_s);
    let from = window_s.map_or(f64::NEG_INFINITY, |w| last - w);
    state
        .rlhf_steps()
        .iter()
        .filter(move |r| r.elapsed_s >= from)
}

/// Points that fill the band between min and max at half-block resolution (`columns` by
/// `2 × rows` pixels), interpolated between the band's points so it reads as one shaded area.
fn band_fill(
    band: &[(f64, f64, f64)],
    x_bounds: [f64; 2],
    y_bounds: [f64; 2],
    columns: u16,
    rows: u16,
) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (band.first(), band.last()) else {
        return Vec::new();
    };
    let columns = usize::from(columns.max(2));
    let dx = (x_bounds[1] - x_bounds[0]) / columns as f64;
    let dy = (y_bounds[1] - y_bounds[0]) / (f64::from(rows.max(1)) * 2.0);
    let mut fill = Vec::new();
    for c in 0..columns {
        let x = x_bounds[0] + (c as f64 + 0.5) * dx;
        if x < first.0 || x > last.0 {
            continue;
        }
        // The band segment around x; band points are in step order.
        let i = band
            .partition_point(|p| p.0 < x)
            .clamp(1, band.len().max(2) - 1);
        let (a, b) = (band[i - 1], band[i.min(band.len() - 1)]);
        let t = if b.0 > a.0 {
            (x - a.0) / (b.0 - a.0)
        } else {
            0.0
        };
        let lo = a.1 + t * (b.1 - a.1);
        let hi = a.2 + t * (b.2 - a.2);
        let n = (((hi - lo) / dy).ceil().max(0.0) as usize).min(400);
        for k in 0..=n {
            let y = if n == 0 {
                lo
            } else {
                lo + (hi - lo) * k as f64 / n as f64
            };
            fill.push((x, y));
        }
    }
    fill
}

/// Axis numbers in three significant digits or so.
fn axis_number(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        si(x)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.1e}")
    }
}

fn axes_labels(x: [f64; 2], y: [f64; 2]) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let x_labels = vec![
        Line::from(si(x[0].max(0.0))),
        Line::from(si(0.5 * (x[0] + x[1]).max(0.0))),
        Line::from(si(x[1].max(0.0))),
    ];
    let y_labels = vec![
        Line::from(axis_number(y[0])),
        Line::from(axis_number(0.5 * (y[0] + y[1]))),
        Line::from(axis_number(y[1])),
    ];
    (x_labels, y_labels)
}

fn no_data(frame: &mut Frame, area: Rect, block: Block, text: &str) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [middle] = Layout::vertical([Constraint::Length(1)])
        .flex(ratatui::layout::Flex::Center)
        .areas(inner);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .style(Style::new().fg(Color::DarkGray)),
        middle,
    );
}

fn render_metric_chart(frame: &mut Frame, area: Rect, state: &DashboardState, ui: &UiState) {
    let metric = ui.metric;
    let band_note = if metric == Metric::EpisodicReturn {
        " (mean, min–max band)"
    } else {
        ""
    };
    let title = format!(" {}{band_note} vs step  ←/→ ", metric_label(metric));
    let block = Block::bordered().title(title);
    let mut series = Series::default();
    for u in windowed_updates(state, ui.window_s()) {
        let band = match metric {
            Metric::EpisodicReturn => u.episodes.return_min.zip(u.episodes.return_max),
            _ => None,
        };
        series.push(u.global_step as f64, metric_value(metric, u), band);
    }
    let inner = block.inner(area);
    let series = series.bucketed(usize::from(inner.width.saturating_sub(10)) * 2);
    let Some((xb, yb)) = series.bounds(&[]) else {
        let text = if state.updates().is_empty() {
            "waiting for the first update"
        } else {
            "no values yet (no episode finished)"
        };
        no_data(frame, area, block, text);
        return;
    };
    let fill = band_fill(
        &series.band,
        xb,
        yb,
        inner.width.saturating_sub(8),
        inner.height.saturating_sub(2),
    );
    // Two layers: the band shaded in half blocks, the mean in braille over it.
    let mut datasets = Vec::new();
    if !fill.is_empty() {
        datasets.push(
            Dataset::default()
                .marker(Marker::HalfBlock)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(BAND))
                .data(&fill),
        );
    }
    datasets.push(
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(ACCENT))
            .data(&series.points),
    );
    let (x_labels, y_labels) = axes_labels(xb, yb);
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds(xb)
                .labels(x_labels)
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds(yb)
                .labels(y_labels)
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}

fn render_throughput(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let block = Block::bordered().title(" Throughput ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The sparkline takes what the fixed rows leave, up to 8 rows; the rest stays empty.
    let spark_rows = inner.height.saturating_sub(10).clamp(1, 8);
    let [table, _, spark_title, spark, _, timing] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(spark_rows),
        Constraint::Length(1),
        Constraint::Length(4),
    ])
    .areas(inner);
    let now = state.rates_now();
    let ten = state.rates_over(10.0);
    let sixty = state.rates_over(60.0);
    let cell = |r: Option<crate::state::Rates>, env: bool| {
        r.map_or("-".to_owned(), |r| si(if env { r.env_fps } else { r.sps }))
    };
    let dim = Style::new().fg(Color::DarkGray);
    let row = |label: &str, env: bool| {
        Line::from(vec![
            Span::styled(format!("{label:<8}"), dim),
            Span::raw(format!("{:>8}", cell(now, env))),
            Span::raw(format!("{:>8}", cell(ten, env))),
            Span::raw(format!("{:>8}", cell(sixty, env))),
        ])
    };
    let lines = vec![
        Line::from(Span::styled(
            format!("{:<8}{:>8}{:>8}{:>8}", "", "now", "10 s", "60 s"),
            dim,
        )),
        row("SPS", false),
        row("env fr/s", true),
    ];
    frame.render_widget(Paragraph::new(lines), table);
    frame.render_widget(
        Line::from(Span::styled("SPS per update (from 0)", dim)),
        spark_title,
    );
    let width = usize::from(spark.width);
    let updates = state.updates();
    let data: Vec<u64> = updates
        .iter()
        .skip(updates.len().saturating_sub(width))
        .map(|r| {
            if r.event.sps.is_finite() {
                r.event.sps.max(0.0) as u64
            } else {
                0
            }
        })
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(ACCENT)),
        spark,
    );
    let Some(u) = state.last_update() else {
        return;
    };
    let t = &u.timing;
    let phases = [
        ("env step", t.env_step_s),
        ("inference", t.inference_s),
        ("update", t.update_s),
    ];
    let total: f64 = phases.iter().map(|p| p.1).sum();
    let mut lines = vec![Line::from(Span::styled(
        format!("last update: {:.3} s", total),
        dim,
    ))];
    let bar_width = usize::from(timing.width.saturating_sub(22));
    for (name, seconds) in phases {
        let share = if total > 0.0 { seconds / total } else { 0.0 };
        let filled = ((share * bar_width as f64).round() as usize).min(bar_width);
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<10}"), dim),
            Span::styled("█".repeat(filled), Style::new().fg(ACCENT)),
            Span::raw(" ".repeat(bar_width - filled)),
            Span::raw(format!(
                " {:>3.0}% {:>5}",
                100.0 * share,
                axis_number(seconds)
            )),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), timing);
}

fn render_loss_table(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let block = Block::bordered().title(" Losses (last update) ");
    let dim = Style::new().fg(Color::DarkGray);
    let lines: Vec<Line> = match state.last_update() {
        None => vec![Line::from(Span::styled("no update yet", dim))],
        Some(u) => {
            let l = &u.losses;
            [
                ("policy loss", l.policy_loss),
                ("value loss", l.value_loss),
                ("entropy", l.entropy),
                ("approx_kl", l.approx_kl),
                ("clipfrac", l.clipfrac),
                ("learning rate", l.learning_rate),
                ("explained var", l.explained_variance),
            ]
            .into_iter()
            .map(|(name, value)| {
                let style = if value.is_finite() {
                    Style::new()
                } else {
                    Style::new().fg(Color::Red).bold()
                };
                Line::from(vec![
                    Span::styled(format!("{name:<15}"), dim),
                    Span::styled(format!("{:>11}", num(value)), style),
                ])
            })
            .collect()
        }
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_system(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let block = Block::bordered().title(" System ");
    let dim = Style::new().fg(Color::DarkGray);
    let row = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<10}"), dim),
            Span::raw(value),
        ])
    };
    let cuda = state
        .run
        .as_ref()
        .is_some_and(|r| r.device.starts_with("cuda"));
    let gpu = match state.gpu_memory() {
        Some(g) => {
            let scope = if g.per_process { "" } else { " dev" };
            match g.total_bytes {
                Some(total) => format!("{} / {}{scope}", bytes(g.used_bytes), bytes(total)),
                None => format!("{}{scope}", bytes(g.used_bytes)),
            }
        }
        None if cuda => "unknown".to_owned(),
        None => "- (cpu run)".to_owned(),
    };
    let episodes: u64 = state.updates().iter().map(|r| r.event.episodes.count).sum();
    let lines = vec![
        row(
            "CPU",
            state
                .system
                .cpu_percent
                .map_or("-".into(), |c| format!("{c:.0}%")),
        ),
        row("RSS", state.rss_bytes().map_or("-".into(), bytes)),
        row("GPU mem", gpu),
        row(
            "update",
            state
                .last_update()
                .map_or("-".into(), |u| thousands(u.update)),
        ),
        row("episodes", thousands(episodes)),
        row(
            "saved",
            match &state.last_checkpoint {
                Some((step, _)) => format!(
                    "step {} ({} checkpoint{})",
                    thousands(*step),
                    state.checkpoints,
                    if state.checkpoints == 1 { "" } else { "s" }
                ),
                None => "none yet".into(),
            },
        ),
        row("events", thousands(state.events_seen)),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_alerts(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let alerts = state.alerts();
    let (title, style) = if alerts.is_empty() {
        (" Health ".to_owned(), Style::new())
    } else {
        (
            format!(
                " Health: {} alert{} ",
                alerts.len(),
                if alerts.len() == 1 { "" } else { "s" }
            ),
            Style::new().fg(Color::Red),
        )
    };
    let block = Block::bordered().title(title).border_style(style);
    let lines: Vec<Line> = if alerts.is_empty() {
        vec![Line::from(Span::styled(
            "✓ no alerts",
            Style::new().fg(Color::Green),
        ))]
    } else {
        alerts
            .iter()
            .map(|a| {
                let color = match a {
                    Alert::NonFinite { .. } => Color::Red,
                    _ => Color::Yellow,
                };
                Line::from(vec![
                    Span::styled("! ", Style::new().fg(color).bold()),
                    Span::raw(a.to_string()),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}

fn render_log(frame: &mut Frame, area: Rect, state: &DashboardState, title: &str) {
    let block = Block::bordered().title(format!(" {title} "));
    let rows = usize::from(block.inner(area).height);
    let log = &state.log;
    let lines: Vec<Line> = if log.is_empty() {
        vec![Line::from(Span::styled(
            "(no log lines yet)",
            Style::new().fg(Color::DarkGray),
        ))]
    } else {
        log.iter()
            .skip(log.len().saturating_sub(rows))
            .map(|l| {
                let style = if l.contains(" ERROR ") {
                    Style::new().fg(Color::Red)
                } else if l.contains(" WARN ") {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                Line::styled(l.as_str(), style)
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn small_chart(frame: &mut Frame, area: Rect, title: &str, mut series: Series) {
    let block = Block::bordered().title(format!(" {title} "));
    let inner = block.inner(area);
    series = series.bucketed(usize::from(inner.width.saturating_sub(10)) * 2);
    let Some((xb, yb)) = series.bounds(&[]) else {
        no_data(frame, area, block, "no data");
        return;
    };
    let (x_labels, y_labels) = axes_labels(xb, yb);
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(ACCENT))
        .data(&series.points);
    let chart = Chart::new(vec![dataset])
        .block(block)
        .x_axis(
            Axis::default()
                .bounds(xb)
                .labels(x_labels)
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds(yb)
                .labels(y_labels)
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}

fn render_losses(frame: &mut Frame, area: Rect, state: &DashboardState, ui: &UiState) {
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(area);
    let metrics = [
        Metric::PolicyLoss,
        Metric::ValueLoss,
        Metric::Entropy,
        Metric::ApproxKl,
        Metric::ClipFrac,
        Metric::LearningRate,
    ];
    for (i, metric) in metrics.into_iter().enumerate() {
        let cols = Layout::horizontal([Constraint::Ratio(1, 2); 2]).split(rows[i / 2]);
        let mut series = Series::default();
        for u in windowed_updates(state, ui.window_s()) {
            series.push(u.global_step as f64, metric_value(metric, u), None);
        }
        let latest = state
            .last_update()
            .and_then(|u| metric_value(metric, u))
            .map_or(String::new(), |v| format!(": {}", num(v)));
        small_chart(
            frame,
            cols[i % 2],
            &format!("{}{latest}", metric_label(metric)),
            series,
        );
    }
}

fn render_rlhf(frame: &mut Frame, area: Rect, state: &DashboardState, ui: &UiState) {
    let Some(last) = state.last_rlhf() else {
        no_data(
            frame,
            area,
            Block::bordered().title(" RLHF "),
            "no RLHF events in this run (hone rlhf writes them; control-task runs do not)",
        );
        return;
    };
    // Health problems (a KL past the run's alert_kl, NaN/Inf) above everything else.
    let alert_rows = match state.alerts().len() {
        0 => 0,
        n => u16::try_from(n + 2)
            .unwrap_or(u16::MAX)
            .min(area.height / 3),
    };
    let [alerts_area, area] =
        Layout::vertical([Constraint::Length(alert_rows), Constraint::Min(0)]).areas(area);
    if alert_rows > 0 {
        render_alerts(frame, alerts_area, state);
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
    let [chart_area, latest_area] =
        Layout::horizontal([Constraint::Percentage(68), Constraint::Percentage(32)]).areas(top);
    let [phases_area, tokens_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);

    // Main chart: the chosen metric against the RLHF step; rewards show the baseline too.
    let metric = ui.rlhf_metric;
    let block = Block::bordered().title(format!(" {} vs step  ←/→ ", rlhf_label(metric)));
    let inner = block.inner(chart_area);
    let buckets = usize::from(inner.width.saturating_sub(10)) * 2;
    let mut main = Series::default();
    let mut baseline = Series::default();
    for r in windowed_rlhf(state, ui.window_s()) {
        main.push(r.step as f64, rlhf_value(metric, r), None);
        if metric == RlhfMetric::Reward {
            baseline.push(r.step as f64, r.baseline_reward_mean, None);
        }
    }
    let (main, baseline) = (main.bucketed(buckets), baseline.bucketed(buckets));
    match main.bounds(&[&baseline]) {
        None => no_data(frame, chart_area, block, "no values"),
        Some((xb, yb)) => {
            let (x_labels, y_labels) = axes_labels(xb, yb);
            let name = if metric == RlhfMetric::Reward {
                "sampled"
            } else {
                rlhf_label(metric)
            };
            let mut datasets = vec![
                Dataset::default()
                    .name(name)
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(ACCENT))
                    .data(&main.points),
            ];
            if !baseline.points.is_empty() {
                datasets.push(
                    Dataset::default()
                        .name("baseline")
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(Style::new().fg(SECOND))
                        .data(&baseline.points),
                );
            }
            let chart = Chart::new(datasets)
                .block(block)
                .legend_position(Some(LegendPosition::BottomRight))
                .x_axis(
                    Axis::default()
                        .bounds(xb)
                        .labels(x_labels)
                        .style(Style::new().fg(Color::DarkGray)),
                )
                .y_axis(
                    Axis::default()
                        .bounds(yb)
                        .labels(y_labels)
                        .style(Style::new().fg(Color::DarkGray)),
                );
            frame.render_widget(chart, chart_area);
        }
    }

    // Latest step's numbers.
    let dim = Style::new().fg(Color::DarkGray);
    let row = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<14}"), dim),
            Span::raw(value),
        ])
    };
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), num);
    let reward = match last.reward_std {
        Some(std) => format!("{} ± {}", num(last.reward_mean), num(std)),
        None => num(last.reward_mean),
    };
    let advantage = last.baseline_reward_mean.map(|b| last.reward_mean - b);
    let lines = vec![
        row("step", thousands(last.step)),
        row("reward", reward),
        row("baseline", opt(last.baseline_reward_mean)),
        row("sampled−base", opt(advantage)),
        if crate::state::rlhf_kl_exceeds(last) {
            Line::from(vec![
                Span::styled(format!("{:<14}", "KL to ref"), dim),
                Span::styled(
                    format!("{} > {}", num(last.kl_to_reference), opt(last.alert_kl)),
                    Style::new().fg(Color::Red).bold(),
                ),
            ])
        } else {
            row("KL to ref", num(last.kl_to_reference))
        },
        row("response len", format!("{:.1}", last.response_length_mean)),
        row("tokens/s", si(last.tokens_per_s)),
        row("policy loss", opt(last.policy_loss)),
        row("learning rate", opt(last.learning_rate)),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Latest step ")),
        latest_area,
    );

    // Where the step's time went.
    let t = &last.timing;
    let phases = [
        ("generate", t.generate_s),
        ("reference", t.reference_s),
        ("reward", t.reward_s),
        ("update", t.update_s),
    ];
    let total: f64 = phases.iter().map(|p| p.1).sum();
    let block = Block::bordered().title(format!(" Time per phase (last step: {:.2} s) ", total));
    let bar_width = usize::from(block.inner(phases_area).width.saturating_sub(28));
    let lines: Vec<Line> = phases
        .iter()
        .map(|&(name, s)| {
            let share = if total > 0.0 { s / total } else { 0.0 };
            let filled = (share * bar_width as f64).round() as usize;
            Line::from(vec![
                Span::styled(format!("{name:<10}"), dim),
                Span::styled("█".repeat(filled), Style::new().fg(ACCENT)),
                Span::raw(" ".repeat(bar_width.saturating_sub(filled))),
                Span::raw(format!(" {s:>7.2} s {:>4.0}%", 100.0 * share)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), phases_area);

    // Tokens/s over the recent steps.
    let block = Block::bordered().title(format!(" tokens/s: {} ", si(last.tokens_per_s)));
    let width = usize::from(block.inner(tokens_area).width);
    let steps = state.rlhf_steps();
    let data: Vec<u64> = steps
        .iter()
        .skip(steps.len().saturating_sub(width))
        .map(|r| {
            if r.tokens_per_s.is_finite() {
                r.tokens_per_s.max(0.0) as u64
            } else {
                0
            }
        })
        .collect();
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(&data)
            .style(Style::new().fg(SECOND)),
        tokens_area,
    );
}

fn popup(frame: &mut Frame, width: u16, height: u16) -> Rect {
    let area = frame.area();
    let width = width.min(area.width);
    let height = height.min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    popup
}

fn render_help(frame: &mut Frame, ui: &UiState) {
    let steer = ui.mode == Mode::Train;
    let mut keys: Vec<(&str, &str)> = vec![
        (
            "q",
            if steer {
                "quit: asks, then stops training with a checkpoint"
            } else {
                "leave the monitor"
            },
        ),
        (
            "Ctrl-C",
            if steer {
                "quit without asking (checkpoint first)"
            } else {
                "leave"
            },
        ),
    ];
    if steer {
        keys.push(("p", "pause / resume training (between updates)"));
        keys.push(("s", "save a checkpoint after this update"));
    }
    keys.extend([
        ("f", "freeze / unfreeze the display (training goes on)"),
        ("tab", "next tab (shift-tab: previous)"),
        ("← / →", "cycle the plotted metric"),
        ("+ / -", "widen / narrow the time window of the charts"),
        ("?", "this help (Esc closes)"),
    ]);
    let area = popup(frame, 64, keys.len() as u16 + 2);
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<8}"), Style::new().fg(ACCENT).bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        area,
    );
}

fn render_confirm(frame: &mut Frame) {
    let area = popup(frame, 52, 5);
    let lines = vec![
        Line::from("Stop training? A checkpoint is written first."),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", Style::new().fg(ACCENT).bold()),
            Span::raw(" / q / Enter: stop     "),
            Span::styled("n", Style::new().fg(ACCENT).bold()),
            Span::raw(" / other: keep training"),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(lines).alignment(Alignment::Center).block(
            Block::bordered()
                .title(" Quit ")
                .border_style(Style::new().fg(Color::Yellow)),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{start, update};
    use hone_telemetry::Event;

    #[test]
    fn the_time_window_keeps_the_last_seconds_of_run_time() {
        let mut state = DashboardState::default();
        state.apply(&start(1_000_000));
        for i in 1..=200 {
            state.apply(&Event::Update(update(i, i as f64, 1.0)));
        }
        let steps: Vec<u64> = windowed_updates(&state, Some(60.0))
            .map(|u| u.update)
            .collect();
        assert_eq!(steps, (140..=200).collect::<Vec<_>>());
        assert_eq!(windowed_updates(&state, None).count(), 200);
    }

    #[test]
    fn bucketing_averages_points_and_keeps_the_band_extremes() {
        let mut series = Series::default();
        for i in 0..100 {
            let x = i as f64;
            series.push(x, Some(x), Some((x - 10.0, x + 10.0)));
        }
        series.push(100.0, Some(f64::NAN), None);
        let bucketed = series.bucketed(10);
        assert_eq!(bucketed.points.len(), 10);
        assert_eq!(bucketed.points[0], (4.5, 4.5));
        assert_eq!(bucketed.band[0], (4.5, -10.0, 19.0));
        assert_eq!(bucketed.band[9].2, 109.0);
        let (x, y) = bucketed.bounds(&[]).unwrap();
        assert_eq!(x, [4.5, 94.5]);
        assert!(y[0] < -10.0 && y[1] > 109.0, "{y:?}");
    }

    #[test]
    fn the_band_fill_spans_min_to_max_between_points() {
        let band = [(0.0, 0.0, 10.0), (10.0, 10.0, 20.0)];
        let fill = band_fill(&band, [0.0, 10.0], [0.0, 20.0], 10, 10);
        // Column 5 is at x = 5.5: the band there runs from 5.5 to 15.5.
        let column: Vec<f64> = fill.iter().filter(|p| p.0 == 5.5).map(|p| p.1).collect();
        let lo = column.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (lo - 5.5).abs() < 1e-9 && (hi - 15.5).abs() < 1e-9,
            "{lo} {hi}"
        );
        // One point per half-block pixel (1 unit of y here), ends included.
        assert_eq!(column.len(), 11);
        assert_eq!(fill.iter().filter(|p| p.0 > 10.0).count(), 0);
    }
}
