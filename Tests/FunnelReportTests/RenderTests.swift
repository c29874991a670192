import FunnelAnalysis
import FunnelAttribution
import FunnelBase
import FunnelConfig
import FunnelEvents
@testable import FunnelReport
import FunnelTestSupport
import Testing

/// The report document and its renderings on a hand-worked log: two control users (one clicks),
/// two treatment users (none clicks).
struct RenderTests {
    static func document() throws -> JSONValue {
        var b = LogBuilder()
        for (user, variant) in [("c1", "control"), ("c2", "control"), ("t1", "treatment"), ("t2", "treatment")] {
            b.exposure(user, 0, variant: variant)
            let i = b.impression(user, 10, item: "a")
            if user == "c1" { b.click(user, 12, on: i) }
        }
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        return ReportBuilder(summary: try Attributor.summarize(log, config: FunnelConfig()), config: FunnelConfig()).json()
    }

    @Test func documentHoldsTheCountsAndTheVerdict() throws {
        let doc = try Self.document()
        #expect(doc["variants"]?["control"]?["users"] == .int(2))
        #expect(doc["variants"]?["control"]?["clicks"] == .int(1))
        #expect(doc["variants"]?["treatment"]?["clicks"] == .int(0))
        // control ctr = 1 click / 2 impressions.
        #expect(doc["variants"]?["control"]?["metrics"]?["ctr"]?["value"] == .double(0.5))
        let verdict = try #require(doc["diagnosis"]?["verdict"])
        #expect(Verdict.allCases.map { JSONValue.string($0.rawValue) }.contains(verdict))
    }

    @Test func textAndHTMLRenderTheVerdict() throws {
        let doc = try Self.document()
        guard case .string(let verdict)? = doc["diagnosis"]?["verdict"] else { Issue.record("no verdict"); return }
        let text = TextReport.render(doc)
        #expect(text.contains("Verdict: " + verdict.uppercased().replacingOccurrences(of: "_", with: " ")))
        #expect(!text.contains("\u{1B}["), "no colour codes unless asked")
        let html = HTMLReport.render(doc)
        #expect(html.contains("<!DOCTYPE html>"))
        #expect(html.contains("Verdict: <b>\(verdict.replacingOccurrences(of: "_", with: " "))</b>"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"), "one self-contained file")
    }

    /// The daily path's page: per treatment a chart with both interval bands, a mark per day with
    /// a lift and a lift axis of round ticks; the degenerate cases say so in words.
    @Test func dailyPathPage() throws {
        func day(_ d: String, _ lift: Double?, _ ci: (Double, Double)?, _ av: (Double, Double)?) -> JSONValue {
            func iv(_ v: (Double, Double)?) -> JSONValue { v.map { .array([.double($0.0), .double($0.1)]) } ?? .null }
            return .object([("day", .string(d)), ("as_of", .string(d + "T23:59:59.999Z")),
                            ("users", .object([("control", .int(100)), ("treatment", .int(98))])),
                            ("comparisons", .array([.object([("variant", .string("treatment")), ("relative_lift", lift.map(JSONValue.double) ?? .null),
                                                             ("relative_ci", iv(ci)), ("p_value", .double(0.2)),
                                                             ("always_valid_relative_ci", iv(av)), ("always_valid_p_value", .double(0.6))])])),
                            ("verdict", .string("inconclusive"))])
        }
        let doc: JSONValue = .object([("metric", .string("purchases_per_user")), ("sequential", .string("msprt")), ("days", .array([
            day("2026-03-01", -0.12, (-0.84, 0.60), (-1.33, 1.09)),
            day("2026-03-02", -0.43, (-0.76, -0.11), (-0.97, 0.11)),
            day("2026-03-03", -0.45, (-0.68, -0.22), (-0.84, -0.07)),
        ]))])
        let html = HTMLReport.renderDaily(doc)
        #expect(html.hasPrefix("<!DOCTYPE html>") && !html.contains("<script") && !html.contains("http"))
        #expect(html.contains("data-chart=\"daily\""))
        #expect(html.components(separatedBy: "class=\"band always-valid\"").count == 2 && html.components(separatedBy: "class=\"band fixed\"").count == 2)
        #expect(html.components(separatedBy: "<circle class=\"mark\"").count == 4, "a mark per day")
        let ticks = html.components(separatedBy: "<text class=\"tick\"").count - 1
        #expect(ticks >= 3, "\(ticks) ticks on the lift axis")
        // The axis spans the widest interval (−133 % … +109 %): a span of 2.42 gives steps of 0.5
        // (the first of 0.1, 0.2, 0.5 with at most 8 steps), so ticks −150 % … +150 %, 0 included.
        #expect(ticks == 7)
        #expect(html.contains(">+0%</text>") && html.contains(">-150%</text>") && html.contains(">+150%</text>"), "round ticks")
        #expect(html.contains("<td class=\"n\">-43.0%</td>"))
        // One day: a mark and interval bars rather than lines; no comparison: a sentence, no chart.
        let one = HTMLReport.renderDaily(.object([("metric", .string("ctr")), ("sequential", .string("none")), ("days", .array([day("2026-03-01", 0.05, (0.01, 0.09), nil)]))]))
        #expect(one.contains("<circle class=\"mark\"") && one.contains("class=\"band fixed\"") && !one.contains("band always-valid"))
        let none = HTMLReport.renderDaily(.object([("metric", .string("ctr")), ("sequential", .string("none")), ("days", .array([
            .object([("day", .string("2026-03-01")), ("users", .object([("control", .int(3))])), ("comparisons", .array([])), ("verdict", .string("inconclusive"))]),
        ]))]))
        #expect(none.contains("No day has a comparison with control yet") && !none.contains("<svg"))
    }

    /// Each chart of the report as (name, drawn, sentence): drawn when its SVG has data marks,
    /// sentence when a `p.empty` stands in its place.
    static func charts(_ html: String) -> [(name: String, drawn: Bool, sentence: Bool)] {
        html.components(separatedBy: "<figure class=\"chart\" data-chart=\"").dropFirst().map { part in
            let name = String(part.prefix { $0 != "\"" })
            let body = part.components(separatedBy: "</figure>")[0]
            return (name, body.contains("class=\"mark\""), body.contains("<p class=\"empty\">"))
        }
    }

    /// The hand-worked log has one position, one item, no carts and no purchases, and the treatment
    /// has no clicks: every chart that has nothing to draw says why in a sentence, the others draw.
    @Test func degenerateChartsBecomeSentences() throws {
        let html = HTMLReport.render(try Self.document())
        let charts = Self.charts(html)
        #expect(charts.map(\.name) == ["funnel-ctr", "funnel-cart_rate", "funnel-post_click_cvr", "funnel-ctcvr", "forest", "positions", "cohorts"])
        for c in charts { #expect(c.drawn != c.sentence, "\(c.name): marks or a sentence, one of them") }
        #expect(charts.filter(\.drawn).map(\.name) == ["funnel-ctr", "forest"])
        #expect(html.contains("The log has no add-to-cart events for the analysed users"))
        #expect(html.contains("Every counted impression is at position 1, so there is no curve by position to draw. CTR at position 1: control 50.00%, treatment 0.00%."))
        // ctr: a bar per variant. Control's is 1/2 with a delta-method interval 0.5 ± 1.96 · 0.5
        // (per-user x − r·y = ±0.5, sample variance 0.5, over n ȳ² = 2): [−0.48, 1.48], drawn
        // within [0, 1], so the axis runs 0 … 100 % in steps of 20 %.
        let ctr = html.components(separatedBy: "data-chart=\"funnel-ctr\"")[1].components(separatedBy: "</figure>")[0]
        #expect(ctr.components(separatedBy: "<rect class=\"mark\"").count == 3)
        let ticks = ctr.components(separatedBy: "<text class=\"tick\"").dropFirst().map { $0.components(separatedBy: ">")[1].components(separatedBy: "<")[0] }
        #expect(ticks == ["0%", "20%", "40%", "60%", "80%", "100%"])
        // Tables, not the text report in a <pre>.
        #expect(!html.contains("<pre"))
        #expect(html.contains("<h2>Counts</h2>\n<table>") && html.contains("<h2>Data quality</h2>\n<table>"))
        #expect(html.contains("<tr><td>control</td><td class=\"n\">2</td><td class=\"n\">2</td><td class=\"n\">1</td>"), "users, impressions, clicks right-aligned")
    }

    /// The forest plot on a hand-made document: grouped by metric with the primary metric first,
    /// the guardrail marked, a lift axis of round ticks including 0, the significant row filled
    /// and starred, a null interval said in words, a null lift said in words.
    @Test func forestPlotGroupsAndAxis() throws {
        func comparison(_ metric: String, _ variant: String, _ lift: Double?, _ ci: (Double, Double)?, significant: Bool) -> JSONValue {
            .object([("metric", .string(metric)), ("variant", .string(variant)), ("segment", .null),
                     ("absolute_diff", .double(lift ?? 0)), ("relative_lift", lift.map(JSONValue.double) ?? .null),
                     ("relative_ci", ci.map { .array([.double($0.0), .double($0.1)]) } ?? .null),
                     ("p_value", .double(significant ? 0.001 : 0.4)), ("adjusted_p_value", .double(significant ? 0.002 : 0.8)),
                     ("significant", .bool(significant))])
        }
        let doc: JSONValue = .object([
            ("experiment", .string("e")), ("control", .string("control")), ("significance_level", .double(0.05)), ("correction", .string("holm")),
            ("comparisons", .array([
                comparison("ctr", "b", 0.08, (0.02, 0.14), significant: true),
                comparison("ctr", "c", 1.18, nil, significant: false),
                comparison("cart_rate", "b", nil, nil, significant: false),
                comparison("purchases_per_user", "b", -0.05, (-0.2, 0.1), significant: false),
                comparison("ctcvr", "b", 0.01, (-0.1, 0.12), significant: false),
                comparison("post_click_cvr", "b", nil, nil, significant: false),
            ])),
            ("diagnosis", .object([("verdict", .string("inconclusive")), ("primary_metric", .string("purchases_per_user")),
                                   ("guardrail_metrics", .array([.string("ctcvr")]))])),
            // Variant b has impressions but no click: its post-click conversion is undefined.
            ("variants", .object([
                ("control", .object([("users", .int(40)), ("clicks", .int(10)), ("purchases", .int(2)), ("metrics", .object([
                    ("post_click_cvr", .object([("value", .double(0.2)), ("ci", .array([.double(0.1), .double(0.3)]))]))]))])),
                ("b", .object([("users", .int(40)), ("clicks", .int(0)), ("purchases", .int(0)), ("metrics", .object([
                    ("post_click_cvr", .object([("value", .null), ("ci", .null)]))]))])),
            ])),
        ])
        let html = HTMLReport.render(doc)
        let cvr = html.components(separatedBy: "data-chart=\"funnel-post_click_cvr\"")[1].components(separatedBy: "</figure>")[0]
        #expect(cvr.components(separatedBy: "class=\"mark\"").count == 2 && cvr.contains(">undefined</text>"), "a bar for control, a word for b")
        let forest = html.components(separatedBy: "data-chart=\"forest\"")[1].components(separatedBy: "</figure>")[0]
        let groups = forest.components(separatedBy: "<text class=\"group\"").dropFirst().map { $0.components(separatedBy: ">")[1].components(separatedBy: "<")[0] }
        #expect(groups == ["purchases_per_user (primary)", "ctcvr (guardrail)", "ctr", "cart_rate", "post_click_cvr"])
        #expect(forest.contains(">no lift: post_click_cvr is undefined in b</text>"), "b has no clicks")
        // Values −20 % … +118 %: a fifth of the range 1.38 is of order 0.1, and steps of 0.2 are the
        // first with at most 8 of them, so ticks −20 % … +120 %.
        let ticks = forest.components(separatedBy: "<text class=\"tick\"").dropFirst().map { $0.components(separatedBy: ">")[1].components(separatedBy: "<")[0] }
        #expect(ticks == ["-20%", "+0%", "+20%", "+40%", "+60%", "+80%", "+100%", "+120%"])
        #expect(forest.components(separatedBy: "<circle class=\"mark\"").count == 5, "a point per comparison with a lift")
        #expect(forest.contains(">+8.0% [+2.0%, +14.0%] *</text>"), "the significant row is starred")
        #expect(forest.contains(">+118.0% (no interval)</text>"))
        #expect(forest.contains(">no lift: the control's cart_rate is 0</text>"))
        // The comparisons table marks the significant row.
        #expect(html.contains("<tr class=\"sig up\"><td>ctr</td><td>b</td>"))
    }

    @Test func roundTicks() {
        let a = HTMLReport.niceTicks(0, 0.187)
        #expect(a.step == 0.05 && a.values.count == 5 && abs(a.hi - 0.2) < 1e-12)
        let b = HTMLReport.niceTicks(-0.2, 1.81)
        #expect(b.step == 0.5 && b.values.map { HTMLReport.percentTick($0, step: b.step, signed: true) } == ["-50%", "+0%", "+50%", "+100%", "+150%", "+200%"])
        let c = HTMLReport.niceTicks(0, 0)
        #expect(c.values.map { HTMLReport.percentTick($0, step: c.step, signed: true) } == ["-1.0%", "-0.5%", "+0.0%", "+0.5%", "+1.0%"])
        let d = HTMLReport.niceTicks(0, 0.0123)
        #expect(d.step == 0.002 && d.values.last.map { HTMLReport.percentTick($0, step: d.step, signed: false) } == "1.4%")
    }
}
