import Foundation
@testable import FunnelModels
import FunnelTestSupport
import Testing

/// Evaluation metrics against scikit-learn and numpy (`tools/fixtures/make_model_fixtures.py` →
/// `Fixtures/metric_fixtures.json`), and hand-worked cases.
struct MetricsTests {
    static func fixtures() throws -> [JSONFixture] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metric_fixtures.json")
        return try JSONFixture.load(url).objects("cases")
    }

    func close(_ a: Double?, _ b: Double, _ what: String) {
        guard let a else { Issue.record("\(what) is undefined"); return }
        #expect(abs(a - b) <= 1e-9 * max(abs(b), 1e-12), "\(what): \(a) vs \(b)")
    }

    @Test func agreesWithScikitLearn() throws {
        let fixtures = try Self.fixtures()
        #expect(fixtures.count >= 6)
        for (k, c) in fixtures.enumerated() {
            let labels = (try c.floats("labels"))
            let predictions = (try c.doubles("predictions"))
            let groups = (c["groups"] as? [NSNumber])?.map { Int32(truncating: $0) }
            let e = ClickMetrics.evaluate(labels: labels, predictions: predictions, groups: groups)
            if let auc = c["auc"] as? NSNumber { close(e.auc, auc.doubleValue, "case \(k) auc") }
            close(e.logloss, (try c.double("logloss")), "case \(k) logloss")
            if let ne = c["normalized_entropy"] as? NSNumber { close(e.normalizedEntropy, ne.doubleValue, "case \(k) NE") }
            close(e.ece, (try c.double("ece")), "case \(k) ece")
            if let r = c["calibration_ratio"] as? NSNumber { close(e.calibrationRatio, r.doubleValue, "case \(k) calibration ratio") }
            let reliability = (try c.rows("reliability"))
            #expect(reliability.count == e.reliability.count, "case \(k) bins")
            for (b, row) in zip(e.reliability, reliability) {
                close(b.prediction, row[0], "case \(k) bin prediction")
                close(b.actual, row[1], "case \(k) bin actual")
                #expect(b.rows == Int(row[2]))
            }
            if let g = c["gauc"] as? NSNumber {
                close(e.gauc, g.doubleValue, "case \(k) gauc")
                #expect(e.gaucGroupsUsed == (try c.int("gauc_groups_used")))
            }
        }
    }

    /// Positives at 0.8 and 0.4, negatives at 0.4 and 0.1: of four (positive, negative) pairs three
    /// are ordered right and one is tied → AUC (3 + 0.5) / 4 = 0.875.
    @Test func aucCountsTiesAsHalf() {
        #expect(ClickMetrics.auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == 0.875)
        #expect(ClickMetrics.auc([1, 1], [0.8, 0.4]) == nil)
    }

    /// One row, one feature of value 1, label 1, α = β = 1, no regularisation: p = 0.5, g = −0.5,
    /// σ = √0.25 = 0.5, z = −0.5, n = 0.25 → w = 0.5 / (1 + 0.5) = 1/3 for the feature and the bias.
    @Test func ftrlFirstStepByHand() {
        var table = Table()
        table.rows = 1; table.fields = 1; table.indices = [3]; table.values = [1]; table.labels = [1]
        var s = FTRLSettings()
        s.alpha = 1; s.beta = 1; s.l1 = 0; s.l2 = 0
        var t = FTRLTrainer(slots: 8, settings: s)
        let loss = t.pass(table)
        #expect(abs(loss - log(2)) < 1e-12)
        let w = t.weights()
        #expect(abs(Double(w[3]) - 1.0 / 3) < 1e-7 && abs(Double(w[8]) - 1.0 / 3) < 1e-7)
        #expect(w[0] == 0)
        // With l1 = 1 the same |z| = 0.5 stays inside the L1 ball: the weight is exactly 0.
        s.l1 = 1
        var sparse = FTRLTrainer(slots: 8, settings: s)
        sparse.pass(table)
        #expect(sparse.weights()[3] == 0)
    }
}

/// Tables, model files and bad input.
final class TableTests {
    /// A directory of this test's own, removed when the test ends.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-models-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: dir) }

    func write(_ text: String, _ name: String) -> String {
        let path = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test func badInputNamesFileLineAndColumn() {
        let spec = FeatureSpec(label: "click", categorical: ["site"], numeric: ["price"])
        let cases: [(String, String)] = [
            ("click,site\n1,a\n", "no column 'price'"),
            ("click,site,price\n1,a,3\n0,b,cheap\n", "line 3, column 'price': 'cheap' is not a number"),
            ("click,site,price\n2,a,3\n", "line 2, column 'click': label '2' must be 0 or 1"),
            ("", "the file is empty"),
            ("click,site,price\n1,a\n", "line 2: 2 cells, the header has 3"),
        ]
        for (k, (text, message)) in cases.enumerated() {
            let path = write(text, "bad\(k).csv")
            do {
                _ = try TableReader.readCSV(path: path, spec: spec)
                Issue.record("expected an error for case \(k)")
            } catch {
                #expect(error.description.contains(path) && error.description.contains(message), "\(error.description)")
            }
        }
    }

    /// A spreadsheet's export: a UTF-8 byte-order mark before the header and CRLF line ends read
    /// to the same table as the plain file; a missing column names the header's own line.
    @Test func byteOrderMarkAndCRLFReadAsPlainText() throws {
        let spec = FeatureSpec(label: "click", categorical: ["site"], numeric: ["price"], hashBits: 10)
        let plain = write("click,site,price\n1,a,3\n0,b,\n", "plain.csv")
        let marked = dir.appendingPathComponent("marked.csv").path
        _ = FileManager.default.createFile(atPath: marked, contents: Data([0xEF, 0xBB, 0xBF] + Array("click,site,price\r\n1,a,3\r\n0,b,\r\n".utf8)))
        let (a, _) = try TableReader.readCSV(path: plain, spec: spec)
        let (b, _) = try TableReader.readCSV(path: marked, spec: spec)
        #expect(b.rows == 2 && a.labels == b.labels && a.indices == b.indices && a.values == b.values)
        // The Criteo layout too: the mark is not part of the first label.
        let criteoRow = "1" + String(repeating: "\t5", count: 13) + String(repeating: "\tab", count: 26) + "\n"
        let criteo = dir.appendingPathComponent("marked-criteo.txt").path
        _ = FileManager.default.createFile(atPath: criteo, contents: Data([0xEF, 0xBB, 0xBF] + Array(criteoRow.utf8)))
        let (c, _) = try TableReader.read(path: criteo, format: "criteo", spec: TableReader.criteoSpec(hashBits: 10, numericTransform: .log))
        #expect(c.rows == 1 && c.labels == [1])
        let wide = dir.appendingPathComponent("utf16.csv").path
        _ = FileManager.default.createFile(atPath: wide, contents: Data([0xFF, 0xFE] + "click,site,price\n1,a,3\n".utf8.flatMap { [$0, 0] }))
        do {
            _ = try TableReader.readCSV(path: wide, spec: spec)
            Issue.record("expected an error for UTF-16 text")
        } catch {
            #expect(error.description == "\(wide): the file is UTF-16 text; save it as UTF-8 (for example: iconv -f UTF-16 -t UTF-8 IN > OUT)", "\(error.description)")
        }
        let late = write("\n\nclick,site\n1,a\n", "late-header.csv")
        do {
            _ = try TableReader.readCSV(path: late, spec: spec)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("\(late): line 3: no column 'price'"), "\(error.description)")
        }
    }

    /// The Criteo layout has no header line, so a short row is measured against the layout.
    @Test func shortCriteoRowNamesTheLayout() {
        let path = write("1\t2\n", "short-criteo.txt")
        do {
            _ = try TableReader.read(path: path, format: "criteo", spec: TableReader.criteoSpec(hashBits: 10, numericTransform: .log))
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(path): line 1: 2 cells, the Criteo layout (no header line) has 40", "\(error.description)")
        }
    }

    /// Two categorical and two numeric columns: per row the categorical fields come first with
    /// value 1, then sign(x)·log(1 + |x|) (a missing numeric cell: its own feature with value 1).
    @Test func rowsHoldCategoricalThenNumericFields() throws {
        let path = write("click,site,x,device,y\n1,a,3,m,-2\n0,b,,d,0\n", "mixed.csv")
        let spec = FeatureSpec(label: "click", categorical: ["site", "device"], numeric: ["x", "y"], hashBits: 10)
        let (t, _) = try TableReader.readCSV(path: path, spec: spec)
        #expect(t.rows == 2 && t.fields == 4 && t.labels == [1, 0])
        #expect(t.values[0] == 1 && t.values[1] == 1 && t.values[4] == 1 && t.values[5] == 1)
        #expect(abs(Double(t.values[2]) - log(4)) < 1e-6 && abs(Double(t.values[3]) + log(3)) < 1e-6)
        #expect(t.values[6] == 1 && t.values[7] == 0)
        #expect(t.indices[0] != t.indices[4] && t.indices[2] != t.indices[6])
    }

    /// `standardize` by hand: x = 1, 2, missing, 5 in training has mean 8/3 and (population)
    /// deviation √(26/9) (squares 25/9 + 4/9 + 49/9 over 3); the missing cell is its own feature
    /// with value 1. A later table (fit: false, as evaluate and predict read) uses the training
    /// mean and deviation, which survive the model file's JSON, and a constant column gets
    /// deviation 1.
    @Test func standardizeUsesTheTrainingMeanAndDeviation() throws {
        let path = write("click,x,c\n1,1,4\n0,2,4\n1,,4\n0,5,4\n", "standardize.csv")
        let spec = FeatureSpec(label: "click", categorical: [], numeric: ["x", "c"], hashBits: 10, numericTransform: .standardize)
        let (t, fitted) = try TableReader.readCSV(path: path, spec: spec, fit: true)
        let mean = 8.0 / 3, sd = (26.0 / 9).squareRoot()
        #expect(abs(fitted.numericMeans[0] - mean) < 1e-12 && abs(fitted.numericScales[0] - sd) < 1e-12)
        #expect(fitted.numericMeans[1] == 4 && fitted.numericScales[1] == 1)
        for (row, x) in [(0, 1.0), (1, 2.0), (3, 5.0)] {
            #expect(abs(Double(t.values[row * 2]) - (x - mean) / sd) < 1e-6, "row \(row)")
            #expect(t.values[row * 2 + 1] == 0)
        }
        #expect(t.values[4] == 1 && t.indices[4] != t.indices[0] && t.indices[0] == t.indices[2])
        let file = ModelFile(model: "lr", spec: fitted, ftrl: FTRLSettings(), weights: [Float](repeating: 0, count: (1 << 10) + 1), trainingRows: 4)
        let modelPath = write("", "standardize-model.json")
        try file.write(to: modelPath)
        let back = try ModelFile.read(path: modelPath)
        #expect(back.spec == fitted)
        let later = write("click,x,c\n1,8,6\n", "standardize-later.csv")
        let (u, _) = try TableReader.readCSV(path: later, spec: back.spec)
        #expect(abs(Double(u.values[0]) - (8 - mean) / sd) < 1e-6 && u.values[1] == 2)
    }

    @Test func modelFileRoundTripAndVersionCheck() throws {
        let spec = FeatureSpec(label: "click", categorical: ["site"], numeric: [], hashBits: 4)
        let file = ModelFile(model: "lr", spec: spec, ftrl: FTRLSettings(), weights: (0...16).map { Float($0) / 8 }, trainingRows: 3)
        let path = write("", "model.json")
        try file.write(to: path)
        let back = try ModelFile.read(path: path)
        #expect(back.weights == file.weights && back.spec == spec)
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"version\":1", with: "\"version\":99")
        let old = write(text, "model99.json")
        #expect(throws: ModelError.self) { try ModelFile.read(path: old) }
        do { _ = try ModelFile.read(path: old) } catch { #expect(error.description.contains("version 99")) }
        let missing = path + ".missing"
        do {
            _ = try ModelFile.read(path: missing)
            Issue.record("expected an error for a missing model file")
        } catch { #expect(error.description.hasPrefix("\(missing): cannot read the model file: no such file"), "\(error.description)") }
        // Cut short inside the weights (a copy that did not finish), and a JSON file of another kind.
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir.appendingPathComponent("model-cut.json").path
        _ = FileManager.default.createFile(atPath: cut, contents: whole.prefix(whole.count - 20))
        do {
            _ = try ModelFile.read(path: cut)
            Issue.record("expected an error for a truncated model file")
        } catch { #expect(error.description.hasPrefix("\(cut): the model file is truncated or damaged"), "\(error.description)") }
        let other = write("{\"name\": \"not a model\"}", "other.json")
        do {
            _ = try ModelFile.read(path: other)
            Issue.record("expected an error for another kind of JSON file")
        } catch { #expect(error.description.hasPrefix("\(other): not a Funnel click-model file"), "\(error.description)") }
    }
}

/// Platt scaling and isotonic regression against scikit-learn
/// (`tools/fixtures/make_calibration_fixtures.py` → `Fixtures/calibration_fixtures.json`).
struct CalibrationTests {
    @Test func agreesWithScikitLearn() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/calibration_fixtures.json")
        let cases = try JSONFixture.load(url).objects("cases")
        #expect(cases.count == 3)
        for c in cases {
            let name = (try c.string("name"))
            let p = (try c.doubles("predictions"))
            let y = (try c.floats("labels"))
            guard case .platt(let a, let b) = Calibration.fitPlatt(predictions: p, labels: y) else { Issue.record("no Platt fit"); continue }
            let ea = (try c.double("platt_a")), eb = (try c.double("platt_b"))
            #expect(abs(a - ea) <= 1e-6 * abs(ea) && abs(b - eb) <= 1e-6 * max(abs(eb), 1e-3), "\(name): Platt (\(a), \(b)) vs (\(ea), \(eb))")
            let iso = Calibration.fitIsotonic(predictions: p, labels: y)
            let query = (try c.doubles("query"))
            let expected = (try c.doubles("isotonic"))
            for (q, e) in zip(query, expected) {
                #expect(abs(iso.apply(q) - e) <= 1e-12, "\(name): isotonic at \(q): \(iso.apply(q)) vs \(e)")
            }
        }
    }

    /// Keeping negatives at rate 0.1 multiplies the odds by 10: p = 0.5 (odds 1) → odds 0.1 → 1/11.
    @Test func downsamplingCorrectionByHand() {
        #expect(abs(correctDownsampling(0.5, rate: 0.1) - 1.0 / 11) < 1e-15)
        #expect(correctDownsampling(0.3, rate: 1) == 0.3)
    }
}
