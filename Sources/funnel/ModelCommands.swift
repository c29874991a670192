import ArgumentParser
import Foundation
import FunnelModels
import FunnelReport

func splitList(_ s: String?) -> [String] {
    (s ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a click model (logistic regression by FTRL-Proximal) on a CSV table.")

    @Option(help: "Training table: CSV with a header (gzip allowed).")
    var data: String

    @Option(help: "Validation table (same columns): its metrics are printed after training.")
    var valid: String?

    @Option(help: "Label column (0/1).")
    var label: String = "click"

    @Option(help: "Comma-separated categorical columns (hashed).")
    var categorical: String?

    @Option(help: "Comma-separated numeric columns.")
    var numeric: String?

    @Option(help: "Numeric transform: log (sign·log(1+|x|) as the value) or buckets (16 quantile buckets as categories).")
    var numericTransform: String = "log"

    @Option(help: "Hash space: 2^bits slots.")
    var hashBits: Int = 20

    @Option(help: "Model: lr (logistic regression, FTRL-Proximal).")
    var model: String = "lr"

    @Option(help: "Passes over the training data.")
    var epochs: Int = 1

    @Option(help: "FTRL α (learning rate scale).")
    var alpha: Double = 0.05

    @Option(help: "FTRL β.")
    var beta: Double = 1

    @Option(help: "L1 regularisation.")
    var l1: Double = 1

    @Option(help: "L2 regularisation.")
    var l2: Double = 1

    @Option(help: "Where to write the model file.")
    var out: String

    func validate() throws {
        if model != "lr" { throw ValidationError("--model: only lr is available in this version (got '\(model)')") }
        if !(1...28).contains(hashBits) { throw ValidationError("--hash-bits must be 1…28") }
        if NumericTransform(rawValue: numericTransform) == nil { throw ValidationError("--numeric-transform must be log or buckets") }
        if epochs < 1 { throw ValidationError("--epochs must be ≥ 1") }
        if splitList(categorical).isEmpty && splitList(numeric).isEmpty { throw ValidationError("name at least one feature column with --categorical or --numeric") }
        if !(alpha > 0) || !(beta >= 0) || !(l1 >= 0) || !(l2 >= 0) { throw ValidationError("--alpha must be > 0 and --beta, --l1, --l2 ≥ 0") }
    }

    func run() throws {
        do throws(ModelError) { try train() } catch { throw CLIError(error.description) }
    }

    func train() throws(ModelError) {
        let spec = FeatureSpec(label: label, categorical: splitList(categorical), numeric: splitList(numeric), hashBits: hashBits,
                               numericTransform: NumericTransform(rawValue: numericTransform)!)
        let (table, fitted) = try TableReader.readCSV(path: data, spec: spec, fit: true)
        var settings = FTRLSettings()
        settings.alpha = alpha; settings.beta = beta; settings.l1 = l1; settings.l2 = l2; settings.epochs = epochs
        var trainer = FTRLTrainer(slots: fitted.slots, settings: settings)
        for e in 1...epochs {
            let loss = trainer.pass(table)
            printError("epoch \(e): progressive log loss \(String(format: "%.6f", loss)) over \(table.rows) rows")
        }
        let file = ModelFile(model: model, spec: fitted, ftrl: settings, weights: trainer.weights(), trainingRows: table.rows)
        try file.write(to: out)
        printError("wrote \(out)")
        if let valid {
            let (v, _) = try TableReader.readCSV(path: valid, spec: fitted)
            let e = ClickMetrics.evaluate(labels: v.labels, predictions: LinearModel(weights: file.weights).logits(v).map { 1 / (1 + exp(-$0)) })
            print("validation: rows \(e.rows), auc \(e.auc.map { String(format: "%.4f", $0) } ?? "—"), logloss \(String(format: "%.5f", e.logloss))")
        }
    }
}

/// Predicted click probabilities of a model on a table.
func predictTable(_ file: ModelFile, data: String, group: String?) throws(ModelError) -> (Table, [Double]) {
    let (table, _) = try TableReader.readCSV(path: data, spec: file.spec, group: group)
    let logits = LinearModel(weights: file.weights).logits(table)
    return (table, logits.map { 1 / (1 + exp(-$0)) })
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a click model: AUC, GAUC, log loss, normalized entropy, calibration.")

    @Option(help: "Model file from funnel train.")
    var model: String

    @Option(help: "Table to evaluate (CSV with the model's columns and the label).")
    var data: String

    @Option(help: "Column whose values group rows for GAUC (impression-weighted).")
    var group: String?

    @Option(help: "Output format: text or json.")
    var format: String = "text"

    func validate() throws {
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json") }
    }

    func run() throws {
        do throws(ModelError) { try evaluate() } catch { throw CLIError(error.description) }
    }

    func evaluate() throws(ModelError) {
        let file = try ModelFile.read(path: model)
        let (table, p) = try predictTable(file, data: data, group: group)
        let e = ClickMetrics.evaluate(labels: table.labels, predictions: p, groups: table.groups)
        var warnings: [String] = []
        if let r = e.calibrationRatio, r < 0.8 || r > 1.2 {
            warnings.append("calibration ratio \(String(format: "%.3f", r)) is outside 0.8–1.2: predictions are \(r > 1 ? "too high" : "too low") on average")
        }
        let doc: JSONValue = .object([
            ("rows", .int(e.rows)), ("auc", .number(e.auc)), ("gauc", .number(e.gauc)), ("gauc_groups", .int(e.gaucGroupsUsed)),
            ("logloss", .number(e.logloss)), ("normalized_entropy", .number(e.normalizedEntropy)), ("ece", .number(e.ece)),
            ("calibration_ratio", .number(e.calibrationRatio)),
            ("reliability", .array(e.reliability.map { .array([.double($0.prediction), .double($0.actual), .int($0.rows)]) })),
            ("warnings", .array(warnings.map(JSONValue.string))),
        ])
        if format == "json" { print(doc.serialized(pretty: true)); return }
        func f(_ v: Double?) -> String { v.map { String(format: "%.5f", $0) } ?? "—" }
        print("rows \(e.rows)  auc \(f(e.auc))  gauc \(f(e.gauc))  logloss \(f(e.logloss))  NE \(f(e.normalizedEntropy))  ECE \(f(e.ece))  calibration ratio \(f(e.calibrationRatio))")
        for w in warnings { print("warning: \(w)") }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a click model's probability for every row of a table.")

    @Option(help: "Model file from funnel train.")
    var model: String

    @Option(help: "Table (CSV with the model's feature columns; the label column must be present).")
    var data: String

    @Option(help: "Where to write one probability per row (with a header line `probability`).")
    var out: String

    func run() throws {
        do throws(ModelError) { try predict() } catch { throw CLIError(error.description) }
    }

    func predict() throws(ModelError) {
        let file = try ModelFile.read(path: model)
        let (_, p) = try predictTable(file, data: data, group: nil)
        var text = "probability\n"
        for v in p { text += String(format: "%.9g\n", v) }
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { throw ModelError("--out \(out): cannot write the file") }
    }
}
