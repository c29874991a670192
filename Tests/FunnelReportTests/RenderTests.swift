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
}
