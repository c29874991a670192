import ArgumentParser
import Foundation
import FunnelBase
import FunnelAttribution
import FunnelEvents
import FunnelPipeline
import FunnelModels
import FunnelReport

/// The feature spec of the Funnel training table (`funnel export-training`): item, position,
/// surface and context columns as categories, the user's history counts as numbers.
func funnelSpec(contextKeys: [String], position: Bool, hashBits: Int, transform: NumericTransform) -> FeatureSpec {
    FeatureSpec(label: "click", categorical: ["item_id"] + (position ? ["position"] : []) + ["surface"] + contextKeys.map(TrainingExport.contextColumn),
                numeric: TrainingExport.numericColumns, hashBits: hashBits, numericTransform: transform)
}

/// The training table of an event log as CSV text (header first).
func trainingCSV(events: String, config: String?, contextKeys: [String]?) throws -> (text: String, contextKeys: [String], rows: Int) {
    let cfg = try loadConfig(config)
    let log = try readEvents(EventSource(paths: [events], format: .auto, quarantinePath: nil))
    warnQuarantined(log, events)
    let (header, keys, rows) = TrainingExport.rows(log, config: cfg, contextKeys: contextKeys)
    guard !rows.isEmpty else { throw CLIError("\(events): no rounds (viewable impressions of non-bot users), so there is nothing to train on; check the events (funnel validate) and the counting rules") }
    var text = header.joined(separator: ",") + "\n"
    text.reserveCapacity(rows.count * 48)
    for r in rows { text += r; text += "\n" }
    return (text, keys, rows.count)
}

/// Reads a table in `format`: csv, criteo, or funnel (an event log turned into the training table
/// in memory; `spec == nil` builds the spec from the log's context keys).
func readModelTable(path: String, format: String, spec: FeatureSpec?, config: String?, fit: Bool, group: String?,
                    overrides: [String: String], funnelSpec make: ([String]) -> FeatureSpec) throws -> (Table, FeatureSpec) {
    let clock = ContinuousClock.now
    let (table, fitted) = try readModelTableUntimed(path: path, format: format, spec: spec, config: config, fit: fit, group: group,
                                                    overrides: overrides, funnelSpec: make)
    printError("read \(table.rows) rows of \(table.fields) fields from \(path) in \(String(format: "%.2f", seconds(since: clock))) s")
    return (table, fitted)
}

private func readModelTableUntimed(path: String, format: String, spec: FeatureSpec?, config: String?, fit: Bool, group: String?,
                                   overrides: [String: String], funnelSpec make: ([String]) -> FeatureSpec) throws -> (Table, FeatureSpec) {
    guard format == "funnel" else {
        do throws(ModelError) { return try TableReader.read(path: path, format: format, spec: spec!, group: group, fit: fit, overrides: overrides) } catch { throw CLIError(error.description) }
    }
    let wanted = spec.map { $0.categorical.compactMap(TrainingExport.contextKey(ofColumn:)) }
    let (text, keys, _) = try trainingCSV(events: path, config: config, contextKeys: wanted)
    do throws(ModelError) {
        return try TableReader.readCSV(bytes: Array(text.utf8), name: "\(path) (training table)", spec: spec ?? make(keys), group: group, fit: fit, overrides: overrides)
    } catch {
        throw CLIError(error.description)
    }
}

/// Seconds elapsed since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

struct ExportTraining: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-training",
        abstract: "Write the click-model training table of an event log: one row per served impression left after duplicates, bots and viewability (label: a click on that impression).")

    @Option(help: "Event file (JSON Lines or CSV, optionally gzip).")
    var events: String

    @Option(help: "funnel.yaml: the counting rules that decide which impressions and clicks count.")
    var config: String?

    @Option(help: "Where to write the CSV.")
    var out: String

    func run() throws {
        let (text, keys, rows) = try trainingCSV(events: events, config: config, contextKeys: nil)
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { throw CLIError("--out \(out): cannot write the file") }
        printError("wrote \(rows) rows to \(out) (context keys: \(keys.isEmpty ? "none" : keys.joined(separator: ", ")))")
    }
}

func splitList(_ s: String?) -> [String] {
    (s ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a click model (FTRL logistic regression, factorization machine, DeepFM or DCN-v2) on a CSV or Criteo-layout table.")

    @Option(help: "Training table: CSV with a header (gzip allowed).")
    var data: String

    @Option(help: "Validation table (same columns): its metrics are printed after training.")
    var valid: String?

    @Option(help: "Data format: csv (header row; --label, --categorical, --numeric), criteo (tab-separated label, 13 integer and 26 categorical columns) or funnel (an event log: one row per served impression, as funnel export-training writes it).")
    var dataFormat: String = "csv"

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "funnel data: position as a categorical feature (position; predictions then fix it, --position) or none.")
    var positionFeature: String = "position"

    @Option(help: "Label column (0/1).")
    var label: String = "click"

    @Option(help: "Comma-separated categorical columns (hashed).")
    var categorical: String?

    @Option(help: "Comma-separated numeric columns.")
    var numeric: String?

    @Option(help: "Numeric transform: log (sign·log(1+|x|) as the value), buckets (16 quantile buckets as categories) or standardize ((x − mean)/deviation of the training data as the value).")
    var numericTransform: String = "log"

    @Option(help: "Hash space: 2^bits slots.")
    var hashBits: Int = 20

    @Option(help: "0: hash categorical values (--hash-bits). n ≥ 1: keep a vocabulary of the values seen at least n times in training (one slot each); rarer and unseen values share one slot per column.")
    var vocabularyMinCount: Int = 0

    @Option(help: "Model: lr (logistic regression, FTRL-Proximal), fm (factorization machine), deepfm or dcnv2 (mini-batches).")
    var model: String = "lr"

    @Option(help: "fm, deepfm, dcnv2: factors (embedding size) per feature.")
    var factors: Int = 8

    @Option(help: "fm, deepfm, dcnv2: optimizer, adagrad or adam (default: adagrad for fm, adam for deepfm and dcnv2).")
    var optimizer: String?

    @Option(help: "fm, deepfm, dcnv2: learning rate (default: 0.05 for fm, 0.001 for deepfm and dcnv2).")
    var learningRate: Double?

    @Option(help: "fm, deepfm, dcnv2 --wide: optimizer of the linear weights, ftrl (FTRL-Proximal with --alpha, --beta, --l1, --l2 on the batch's summed gradient, as Wide & Deep's wide part) or the --optimizer (default).")
    var linearOptimizer: String?

    @Flag(help: "dcnv2: add a wide part, per-slot linear weights and a bias, to the logit (trained by --linear-optimizer).")
    var wide: Bool = false

    @Option(help: "fm, deepfm, dcnv2: rows per mini-batch.")
    var batchSize: Int = 256

    @Option(help: "deepfm, dcnv2: comma-separated hidden layer widths of the MLP (ReLU).")
    var hidden: String = "256,128"

    @Option(help: "dcnv2: cross layers.")
    var crossLayers: Int = 2

    @Option(help: "deepfm, dcnv2: threads per mini-batch (the model is reproducible for a fixed seed and thread count).")
    var threads: Int = 2

    @Option(help: "With --valid and several epochs: stop after this many epochs without a better validation log loss, and keep the best epoch's model.")
    var patience: Int = 2

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

    @Option(help: "Keep each negative training row with this probability (1: all); predictions are corrected by p/(p + (1 − p)/r).")
    var negativeRate: Double = 1

    @Option(help: "Calibration fitted on --valid and stored in the model: none, platt or isotonic.")
    var calibrate: String = "none"

    @Option(help: "Seed of the initial weights and of the negative downsampling.")
    var seed: UInt64 = 1

    @Option(help: "Where to write the model file.")
    var out: String

    @Option(help: "Also write the model as initialised, before its first training step, to this path (same file format), so that another implementation can start from the same weights.")
    var initialOut: String?

    func validate() throws {
        if !["lr", "fm", "deepfm", "dcnv2"].contains(model) { throw ValidationError("--model must be lr, fm, deepfm or dcnv2 (got '\(model)')") }
        if let optimizer, OptimizerSettings.Kind(rawValue: optimizer) == nil { throw ValidationError("--optimizer must be adagrad or adam") }
        if factors < 1 || batchSize < 1 || !((learningRate ?? 1) > 0) { throw ValidationError("--factors and --batch-size must be ≥ 1 and --learning-rate > 0") }
        if let linearOptimizer, linearOptimizer != "ftrl" && linearOptimizer != mainOptimizer {
            throw ValidationError("--linear-optimizer must be ftrl or, as without it, the --optimizer (\(mainOptimizer)); got '\(linearOptimizer)'")
        }
        if wide && model != "dcnv2" { throw ValidationError("--wide applies to dcnv2 (fm and deepfm always have linear weights)") }
        if linearOptimizer != nil && !(["fm", "deepfm"].contains(model) || wide) {
            throw ValidationError("--linear-optimizer applies to the models with linear weights: fm, deepfm and dcnv2 --wide")
        }
        if hiddenWidths == nil { throw ValidationError("--hidden must be comma-separated positive widths, e.g. 256,128 (got '\(hidden)')") }
        if crossLayers < 0 || crossLayers > 8 { throw ValidationError("--cross-layers must be 0…8") }
        if !(1...64).contains(threads) { throw ValidationError("--threads must be 1…64") }
        if vocabularyMinCount < 0 { throw ValidationError("--vocabulary-min-count must be ≥ 0") }
        if patience < 1 { throw ValidationError("--patience must be ≥ 1") }
        if !(1...28).contains(hashBits) { throw ValidationError("--hash-bits must be 1…28") }
        if NumericTransform(rawValue: numericTransform) == nil { throw ValidationError("--numeric-transform must be log, buckets or standardize") }
        if epochs < 1 { throw ValidationError("--epochs must be ≥ 1") }
        if !["csv", "criteo", "funnel"].contains(dataFormat) { throw ValidationError("--data-format must be csv, criteo or funnel") }
        if positionFeature != "position" && positionFeature != "none" { throw ValidationError("--position-feature must be position or none") }
        if !(negativeRate > 0 && negativeRate <= 1) { throw ValidationError("--negative-rate must be in (0, 1]") }
        if !["none", "platt", "isotonic"].contains(calibrate) { throw ValidationError("--calibrate must be none, platt or isotonic") }
        if calibrate != "none" && valid == nil { throw ValidationError("--calibrate \(calibrate) is fitted on the validation set: pass --valid") }
        if dataFormat == "csv" && splitList(categorical).isEmpty && splitList(numeric).isEmpty {
            throw ValidationError("name at least one feature column with --categorical or --numeric")
        }
        if !(alpha > 0) || !(beta >= 0) || !(l1 >= 0) || !(l2 >= 0) { throw ValidationError("--alpha must be > 0 and --beta, --l1, --l2 ≥ 0") }
    }

    /// The --optimizer, or its default: adagrad for fm, adam for the networks.
    var mainOptimizer: String { optimizer ?? (model == "fm" ? "adagrad" : "adam") }

    var hiddenWidths: [Int]? {
        let parts = splitList(hidden).map { Int($0) }
        guard parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.map { $0! }
    }

    func run() throws {
        do throws(ModelError) { try train() } catch { throw CLIError(error.description) }
    }

    func read(_ path: String, spec: FeatureSpec?, fit: Bool) throws(ModelError) -> (Table, FeatureSpec) {
        let transform = NumericTransform(rawValue: numericTransform)!
        do {
            return try readModelTable(path: path, format: dataFormat, spec: spec, config: config, fit: fit, group: nil, overrides: [:]) { keys in
                var s = funnelSpec(contextKeys: keys, position: positionFeature == "position", hashBits: hashBits, transform: transform)
                s.vocabularyMinCount = vocabularyMinCount
                return s
            }
        } catch { throw ModelError("\(error)") }
    }

    func train() throws(ModelError) {
        let transform = NumericTransform(rawValue: numericTransform)!
        var spec = dataFormat == "criteo"
            ? TableReader.criteoSpec(hashBits: hashBits, numericTransform: transform)
            : FeatureSpec(label: label, categorical: splitList(categorical), numeric: splitList(numeric), hashBits: hashBits, numericTransform: transform)
        spec.vocabularyMinCount = vocabularyMinCount
        let (full, fitted) = try read(data, spec: dataFormat == "funnel" ? nil : spec, fit: true)
        let table = full.downsampled(rate: negativeRate, seed: seed)
        if negativeRate < 1 { printError("negative downsampling at \(negativeRate): \(table.rows) of \(full.rows) training rows kept") }
        var file = ModelFile(model: model, dataFormat: dataFormat, spec: fitted, ftrl: nil, weights: [], trainingRows: table.rows)
        file.negativeRate = negativeRate
        let validTable: Table?
        if let valid { validTable = try read(valid, spec: fitted, fit: false).0 } else { validTable = nil }
        var o = OptimizerSettings()
        o.kind = OptimizerSettings.Kind(rawValue: mainOptimizer)!  // validated
        o.learningRate = learningRate ?? (model == "fm" ? 0.05 : 0.001)
        if linearOptimizer == "ftrl" {
            var f = FTRLSettings()
            f.alpha = alpha; f.beta = beta; f.l1 = l1; f.l2 = l2
            o.linearFTRL = f
        }
        if o.kind == .adam { o.epsilon = 1e-8 }
        // One pass over the training rows (its loss), and the current weights in file order.
        let pass: () -> Double
        let weights: () -> [Float]
        let lossName: String
        switch model {
        case "fm":
            var fm = FactorizationMachine<Float>(slots: fitted.slots, factors: factors, seed: seed)
            var state = FMOptimizer<Float>(slots: fitted.slots, factors: factors, settings: o)
            var g = FactorizationMachine<Float>.Gradient(slots: fitted.slots, factors: factors)
            pass = { fm.epoch(table, optimizer: &state, batchSize: batchSize, gradient: &g) }
            weights = { fm.w + [fm.bias] + fm.v }
            file.factors = factors
            file.optimizer = o
            lossName = "mean training log loss"
        case "deepfm", "dcnv2":
            let a = DeepArchitecture(kind: DeepKind(rawValue: model)!, fields: fitted.fieldCount, dim: factors, hidden: hiddenWidths!, crossLayers: crossLayers, wide: wide)
            let trainer = DeepTrainer(model: DeepModel<Float>(architecture: a, slots: fitted.slots, seed: seed), optimizer: o, batchSize: batchSize, threads: threads)
            printError("matrix kernel: \(MatrixKernel.active.rawValue) (FUNNEL_SIMD=avx2 or FUNNEL_SIMD=baseline caps it)")
            pass = { trainer.epoch(table) }
            weights = { ModelFile.deepWeights(trainer.model) }
            file.factors = factors
            file.optimizer = o
            file.architecture = a
            lossName = "mean training log loss"
        default:
            var settings = FTRLSettings()
            settings.alpha = alpha; settings.beta = beta; settings.l1 = l1; settings.l2 = l2; settings.epochs = epochs
            var trainer = FTRLTrainer(slots: fitted.slots, settings: settings)
            file.ftrl = settings
            pass = { trainer.pass(table) }
            weights = { trainer.weights() }
            lossName = "progressive log loss"
        }
        if let initialOut {
            var start = file
            start.weights = weights()
            try start.write(to: initialOut)
            printError("wrote the initial weights to \(initialOut)")
        }
        // Epochs, with early stopping on the validation log loss.
        var best: (loss: Double, weights: [Float], epoch: Int)? = nil
        let clock = ContinuousClock.now
        for e in 1...epochs {
            let loss = pass()
            file.weights = weights()
            var line = "epoch \(e): \(lossName) \(String(format: "%.6f", loss)) over \(table.rows) rows"
            if let v = validTable, epochs > 1 {
                let ll = ClickMetrics.evaluate(labels: v.labels, predictions: file.predict(v, threads: threads)).logloss
                line += ", validation log loss \(String(format: "%.6f", ll))"
                if best == nil || ll < best!.loss { best = (ll, file.weights, e) }
                printError(line)
                if e - best!.epoch >= patience {
                    printError("early stop: no better validation log loss for \(patience) epochs; keeping epoch \(best!.epoch)")
                    break
                }
                continue
            }
            printError(line)
        }
        if let best { file.weights = best.weights }
        printError("trained in \(String(format: "%.2f", seconds(since: clock))) s")
        if let v = validTable {
            let raw = file.predict(v)
            switch calibrate {
            case "platt": file.calibration = Calibration.fitPlatt(predictions: raw, labels: v.labels)
            case "isotonic": file.calibration = Calibration.fitIsotonic(predictions: raw, labels: v.labels)
            default: break
            }
            let e = ClickMetrics.evaluate(labels: v.labels, predictions: file.predict(v))
            func f(_ x: Double?) -> String { x.map { String(format: "%.5f", $0) } ?? "—" }
            print("validation (\(calibrate == "none" ? "uncalibrated" : calibrate + "-calibrated on it")): rows \(e.rows), auc \(f(e.auc)), logloss \(f(e.logloss)), calibration ratio \(f(e.calibrationRatio))")
        }
        try file.write(to: out)
        printError("wrote \(out)")
    }
}

/// A model's table (in `format`, else the model's), with the position column fixed to `position`
/// when given and the model has one.
func modelTable(_ file: ModelFile, data: String, format: String?, config: String?, group: String?, position: Int?) throws -> Table {
    let overrides = position.map { p in file.spec.categorical.contains("position") ? ["position": String(p)] : [:] } ?? [:]
    return try readModelTable(path: data, format: format ?? file.dataFormat, spec: file.spec, config: config, fit: false, group: group,
                              overrides: overrides) { _ in file.spec }.0
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

    @Option(help: "Data format (csv, criteo or funnel); default: the model's.")
    var dataFormat: String?

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "Score every row at this position (models with a position feature); default: the logged positions.")
    var position: Int?

    @Option(help: "Output format: text or json.")
    var format: String = "text"

    func validate() throws {
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json") }
    }

    func run() throws {
        let file: ModelFile
        do throws(ModelError) { file = try ModelFile.read(path: model) } catch { throw CLIError(error.description) }
        let table = try modelTable(file, data: data, format: dataFormat, config: config, group: group ?? (file.dataFormat == "funnel" && (dataFormat ?? "funnel") == "funnel" ? "user_id" : nil), position: position)
        let p = file.predict(table)
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

    @Option(help: "Data format (csv, criteo or funnel); default: the model's.")
    var dataFormat: String?

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "Models with a position feature score every row at this position, so that rankings compare relevance rather than slots.")
    var position: Int = 1

    func run() throws {
        let file: ModelFile
        let loading = ContinuousClock.now
        do throws(ModelError) { file = try ModelFile.read(path: model) } catch { throw CLIError(error.description) }
        printError("loaded the model in \(String(format: "%.4f", seconds(since: loading))) s")
        let table = try modelTable(file, data: data, format: dataFormat, config: config, group: nil, position: position)
        let clock = ContinuousClock.now
        let p = file.predict(table)
        printError("predicted \(table.rows) rows in \(String(format: "%.4f", seconds(since: clock))) s")
        var text = "probability\n"
        for v in p { text += String(format: "%.9g\n", v) }
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { throw CLIError("--out \(out): cannot write the file") }
    }
}
