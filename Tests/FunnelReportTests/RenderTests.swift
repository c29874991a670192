import FunnelAnalysis
import FunnelAttribution
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelReport
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
}
