//! Hand-written SVG bar charts of ratios ours/peer, one per bench section,
//! written next to bench/RESULTS.md and linked from it. Lower is better for
//! every ratio charted here (time, bytes): a bar left of the 1x line means
//! ours is faster or smaller. Log scale, so 0.003x and 1.5x fit one chart.

use crate::prereq::root;

/// One bar: `label` (e.g. "run true vs runc"), the ratio ours/peer, and an
/// optional target the ratio must not exceed (drawn as a red line on the
/// bar's row, labelled `target_label`).
pub struct Bar {
    pub label: String,
    pub ratio: f64,
    pub target: Option<f64>,
    pub target_label: String,
}

impl Bar {
    pub fn new(label: impl Into<String>, ratio: f64) -> Bar {
        Bar { label: label.into(), ratio, target: None, target_label: String::new() }
    }

    /// With a target ratio, labelled like `<= 0.25x`.
    pub fn target(mut self, t: f64) -> Bar {
        self.target = Some(t);
        self.target_label = format!("target <= {}x", short(t));
        self
    }

    /// With a target ratio derived from an absolute budget (e.g. 1 MiB over
    /// the peer's median), labelled `label`.
    pub fn target_as(mut self, t: f64, label: &str) -> Bar {
        self.target = Some(t);
        self.target_label = label.to_string();
        self
    }
}

fn short(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else if r >= 0.01 {
        format!("{r:.3}")
    } else {
        format!("{r:.5}")
    }
}

/// A tick value without trailing zeros (0.02, 0.5, 20).
fn trim(v: f64) -> String {
    let t = format!("{v:.6}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The SVG text of one chart.
pub fn svg(title: &str, bars: &[Bar]) -> String {
    const W: f64 = 860.0;
    const LEFT: f64 = 300.0; // labels end here
    const PLOT_W: f64 = 340.0;
    const ROW: f64 = 30.0;
    const TOP: f64 = 58.0;
    let good = |r: f64| r.is_finite() && r > 0.0;
    let mut lo_v: f64 = 1.0;
    let mut hi_v: f64 = 1.0;
    for b in bars {
        for v in [Some(b.ratio), b.target].into_iter().flatten().filter(|v| good(*v)) {
            lo_v = lo_v.min(v);
            hi_v = hi_v.max(v);
        }
    }
    // Whole decades, with some room right of the 1x line.
    let lo = lo_v.log10().floor().min(-1.0);
    let hi = hi_v.log10().ceil().max(0.0);
    let (lo_x, hi_x) = (lo - 0.05, hi + 0.25);
    let x = |v: f64| LEFT + (v.log10().clamp(lo_x, hi_x) - lo_x) / (hi_x - lo_x) * PLOT_W;
    let h = TOP + ROW * bars.len() as f64 + 50.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
         <text x=\"10\" y=\"38\" fill=\"#555\">ours / peer, log scale; a bar left of the 1x line: ours faster or smaller by that factor. Red line: target (at most).</text>\n",
        esc(title)
    );
    let bottom = TOP + ROW * bars.len() as f64;
    // decade grid and labels
    let mut d = lo as i32;
    while d as f64 <= hi {
        let v = 10f64.powi(d);
        let gx = x(v);
        let (stroke, dash) = if d == 0 { ("#333", "") } else { ("#ccc", " stroke-dasharray=\"3,3\"") };
        s += &format!("<line x1=\"{gx:.1}\" y1=\"{}\" x2=\"{gx:.1}\" y2=\"{bottom}\" stroke=\"{stroke}\"{dash}/>\n", TOP - 6.0);
        let tick = if d >= 0 { format!("{}", 10u64.pow(d as u32)) } else { format!("0.{}1", "0".repeat((-d - 1) as usize)) };
        s += &format!("<text x=\"{gx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{tick}x</text>\n", bottom + 16.0);
        if hi - lo <= 2.0 {
            for m in [2.0, 5.0] {
                let mv = v * m;
                if mv.log10() < hi_x {
                    let mx = x(mv);
                    s += &format!("<line x1=\"{mx:.1}\" y1=\"{}\" x2=\"{mx:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/>\n", TOP - 6.0);
                    s += &format!("<text x=\"{mx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#999\" font-size=\"10\">{}</text>\n", bottom + 14.0, trim(mv));
                }
            }
        }
        d += 1;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", LEFT - 8.0, y + 17.0, esc(&b.label));
        if !good(b.ratio) {
            s += &format!("<text x=\"{}\" y=\"{}\" fill=\"#777\">not measured</text>\n", LEFT + 4.0, y + 17.0);
            continue;
        }
        let color = match b.target {
            Some(t) if b.ratio <= t => "#2e7d32",
            Some(_) => "#c62828",
            None => "#1565c0",
        };
        // From the 1x line to the ratio: leftwards when ours is smaller.
        let (a, z) = (x(b.ratio.min(1.0)), x(b.ratio.max(1.0)));
        s += &format!(
            "<rect x=\"{a:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"/>\n",
            y + 5.0,
            (z - a).max(1.5),
            ROW - 10.0
        );
        let mut label = format!("{}x", short(b.ratio));
        if let Some(t) = b.target {
            let tx = x(t);
            s += &format!("<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"red\" stroke-width=\"2\"/>\n", y + 1.0, y + ROW - 1.0);
            label += &format!(", {}: {}", b.target_label, if b.ratio <= t { "PASS" } else { "MISS" });
        }
        s += &format!("<text x=\"{}\" y=\"{}\">{}</text>\n", LEFT + PLOT_W + 8.0, y + 17.0, esc(&label));
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">ratio ours / peer, measured in the same run</text>\n</svg>\n",
        LEFT + PLOT_W / 2.0,
        bottom + 36.0
    );
    s
}

/// Writes bench/<section>.svg and returns the Markdown that links it.
pub fn write(section: &str, title: &str, bars: &[Bar]) -> Result<String, String> {
    let dir = root().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{section}.svg"));
    let tmp = dir.join(format!("{section}.svg.tmp"));
    std::fs::write(&tmp, svg(title, bars)).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
    Ok(format!("![{section}: ratios ours / peer]({section}.svg)\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_a_bar_per_peer_and_target_lines() {
        let bars = vec![
            Bar::new("run vs runc", 0.5).target(0.25),
            Bar::new("exec vs runc", 0.12),
            Bar::new("rss vs docker", 0.0004).target_as(0.08, "1 MiB"),
            Bar::new("slower", 1.6),
            Bar::new("missing", f64::NAN),
        ];
        let s = svg("t <&>", &bars);
        if let Some(p) = std::env::var_os("SKIFF_CHART_OUT") {
            std::fs::write(p, &s).unwrap();
        }
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<rect").count(), 1 + 4, "background + one bar per measured peer");
        assert_eq!(s.matches("stroke=\"red\"").count(), 2);
        assert!(s.contains("t &lt;&amp;&gt;") && s.contains("not measured"));
        assert!(s.contains("0.50x, target <= 0.25x: MISS".replace('<', "&lt;").as_str()), "{s}");
        assert!(s.contains("1 MiB: PASS"));
        let narrow = svg("n", &[Bar::new("a", 0.3)]);
        assert!(narrow.contains(">0.2</text>") && narrow.contains(">0.5</text>"), "{narrow}");
    }
}
