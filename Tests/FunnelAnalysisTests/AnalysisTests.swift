import Foundation
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport
import FunnelStats
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

    /// Sequential inference: every comparison carries an always-valid interval around the same
    /// estimate, wider than the fixed-horizon one, with the method's own p-value (recomputed here
    /// from the estimate and the fixed interval's standard error); the verdict follows it. A small
    /// difference that is significant at a fixed horizon is not significant always-validly.
    @Test(arguments: [SequentialMethod.confidenceSequence, .msprt])
    func sequentialComparisonsAndVerdict(method: SequentialMethod) throws {
        var b = LogBuilder()
        // 400 users an arm; 30 % of control and 40 % of treatment buy once.
        for k in 0..<400 {
            b.exposure("c\(k)", 0, variant: "control")
            if k % 10 < 3 { b.purchase("c\(k)", 10, items: [("x", 1, 5)]) }
            b.exposure("t\(k)", 0, variant: "treatment")
            if k % 10 < 4 { b.purchase("t\(k)", 10, items: [("x", 1, 5)]) }
        }
        var config = FunnelConfig()
        config.guardrailMetrics = []
        let fixed = try analysis(b, config)
        config.sequential = method
        config.sequentialTuning = 1000
        let a = try analysis(b, config)
        #expect(fixed.comparisons.allSatisfy { $0.sequential == nil })
        let primary = try #require(a.comparisons.first { $0.metric == .purchasesPerUser && $0.segment == nil })
        let s = try #require(primary.sequential)
        let d = primary.difference, ci = try #require(d.ci), av = try #require(s.ci)
        #expect(av.0 < ci.0 && av.1 > ci.1, "always-valid \(av) is wider than \(ci)")
        // The difference 0.1 with standard error √(s²_t/400 + s²_c/400), s² the per-user variances
        // with n − 1 denominators: s² = p(1 − p)·400/399.
        let z = 1.959963984540054
        let vt = 0.4 * 0.6 * 400 / 399, vc = 0.3 * 0.7 * 400 / 399
        let se = (vt / 400 + vc / 400).squareRoot()
        #expect(abs(d.absoluteDiff! - 0.1) < 1e-12)
        let expected: Sequential.Result?
        if method == .confidenceSequence {
            expected = Sequential.confidenceSequence(estimate: 0.1, standardError: se, n: 800, alpha: 0.05, nStar: 1000)
        } else {
            // Statsig's τ² = z²·(σ²_t + σ²_c)/(N_t + N_c).
            expected = Sequential.msprt(estimate: 0.1, standardError: se, tau2: z * z * (vt + vc) / 800, alpha: 0.05)
        }
        let e = try #require(expected)
        #expect(abs(av.0 - e.lower) < 1e-9 && abs(av.1 - e.upper) < 1e-9)
        #expect(abs(s.pValue! - e.pValue) < 1e-9)
        // Fixed horizon: z ≈ 3, p ≈ 0.003, significant; always-valid at this size it is not.
        #expect(primary.significant && fixed.verdict == .ship)
        #expect(!s.significant && !primary.decisive && a.verdict == .inconclusive)
    }
}
