import Foundation
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport
import FunnelTestSupport
import Testing

struct AnalysisTests {
    func analysis(_ b: LogBuilder, _ config: FunnelConfig = FunnelConfig()) throws -> Analysis {
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        return Analysis(summary: try Attributor.summarize(log, config: config), config: config)
    }

    @Test func sampleRatioMismatchMakesTheVerdictInconclusive() throws {
        var b = LogBuilder()
        for k in 0..<300 { b.exposure("c\(k)", 0, variant: "control") }
        for k in 0..<200 { b.exposure("t\(k)", 0, variant: "treatment") }
        let a = try analysis(b)
        // χ² = 2 · 50² / 250 = 20 on one degree of freedom: p = P(χ²₁ > 20) = erfc(√10)
        // (scipy.stats.chisquare([300, 200]).pvalue = 7.744216431044074e-06), below 0.001.
        let p = try #require(a.srm.p)
        #expect(abs(p / erfc(10.0.squareRoot()) - 1) < 1e-12)
        #expect(a.srm.flag)
        #expect(a.verdict == .inconclusive)
        var split = FunnelConfig()
        split.expectedSplit = ["control": 3, "treatment": 2]
        let b2 = try analysis(b, split)
        #expect(b2.srm.p == 1 && !b2.srm.flag)
    }

    @Test func leakageAboveFivePercentMakesTheVerdictInconclusive() throws {
        var b = LogBuilder()
        for k in 0..<100 { b.exposure("c\(k)", 0, variant: "control"); b.exposure("t\(k)", 0, variant: "treatment") }
        for k in 0..<11 { b.exposure("l\(k)", 0, variant: "control"); b.exposure("l\(k)", 1, variant: "treatment") }
        let a = try analysis(b)
        #expect(a.dataQuality.leakedUsers == 11)
        #expect(a.verdict == .inconclusive)
        #expect(a.verdictReasons.first?.contains("more than one variant") == true)
    }

    @Test func worsePrimaryMeansDoNotShip() throws {
        var b = LogBuilder()
        // Control users each buy once; treatment users never do.
        for k in 0..<50 {
            b.exposure("c\(k)", 0, variant: "control")
            b.purchase("c\(k)", 10, items: [("x", 1, 5)])
            b.exposure("t\(k)", 0, variant: "treatment")
            if k < 2 { b.purchase("t\(k)", 10, items: [("x", 1, 5)]) }
        }
        let a = try analysis(b)
        let primary = try #require(a.comparisons.first { $0.metric == .purchasesPerUser && $0.segment == nil })
        #expect(abs(primary.difference.absoluteDiff! + 0.96) < 1e-12)
        #expect(primary.significant)
        #expect(a.verdict == .doNotShip)
        // Segment comparisons: one family per the contract; segment labels are "dimension=value".
        #expect(a.comparisons.contains { $0.segment == "device=mobile" })
    }
}
