import ArgumentParser
import Foundation
import FunnelBase
import FunnelModels
import FunnelPipeline

extension TableFormat: ExpressibleByArgument {}
extension ModelKind: ExpressibleByArgument {}
extension CalibrationKind: ExpressibleByArgument {}
extension BiasInit: ExpressibleByArgument {}
extension NumericTransform: ExpressibleByArgument {}
extension OptimizerSettings.Kind: ExpressibleByArgument {}

/// Whether the Funnel training table's position is a feature.
enum PositionFeature: String, CaseIterable, ExpressibleByArgument { case position, none }

/// The optimizer of the linear weights: FTRL-Proximal, or the model's own optimizer.
enum LinearOptimizer: String, CaseIterable, ExpressibleByArgument { case ftrl, adagrad, adam }

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

    @Flag(help: "Add a last column `purchase`: 1 when the row was clicked and a purchase was attributed through a click to the impression it counts as (the conversion models' second label).")
    var purchase = false

    func run() throws {
        let (text, keys, rows, quarantined) = try trainingCSV(events: events, configPath: config, contextKeys: nil, purchase: purchase)
        if let note = quarantineNote(quarantined, events) { printError(note) }
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { throw CLIError("--out \(out): cannot write the file") }
        printError("wrote \(rows) rows to \(out) (context keys: \(keys.isEmpty ? "none" : keys.joined(separator: ", ")))")
    }
}

func splitList(_ s: String?) -> [String] {
    (s ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// The options of a training: the data, the model and its settings (`funnel train`, `funnel tune`).
struct TrainingOptions: ParsableArguments {
    @Option(help: "Training table: CSV with a header (gzip allowed).")
    var data: String

    @Option(help: "Validation table (same columns): its metrics are printed after training.")
    var valid: String?

    @Option(help: "Data format: csv (header row; --label, --categorical, --numeric), criteo (tab-separated label, 13 integer and 26 categorical columns) or funnel (an event log: one row per served impression, as funnel export-training writes it).")
    var dataFormat: TableFormat = .csv

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "funnel data: position as a categorical feature (position; predictions then fix it, --position) or none.")
    var positionFeature: PositionFeature = .position

    @Option(help: "Label column (0/1): the click.")
    var label: String = "click"

    @Option(help: "Conversion models: the conversion label column (0/1, 1 only on rows whose --label is 1), e.g. purchase.")
    var conversionLabel: String?

    @Option(help: "escm2-ips, escm2-dr, dcmt, choruscvr: lower bound of pCTR in the weights 1/pCTR, and of 1 − pCTR in 1/(1 − pCTR).")
    var propensityClip: Double = 0.05

    @Option(help: "escm2-ips, escm2-dr: weight λ of the counterfactual conversion risk.")
    var counterfactualWeight: Double = 1

    @Option(help: "dcmt: weight of the counterfactual-mechanism constraint mean |1 − (pCVR + counterfactual pCVR)|.")
    var constraintWeight: Double = 0.001

    @Flag(help: "naive-cvr: the conversion tower reads the click tower's embeddings (trained by both losses) instead of a table of its own.")
    var sharedEmbedding = false

    @Option(help: "Comma-separated categorical columns (hashed).")
    var categorical: String?

    @Option(help: "Comma-separated numeric columns.")
    var numeric: String?

    @Option(help: "Numeric transform: log (sign·log(1+|x|) as the value), buckets (16 quantile buckets as categories) or standardize ((x − mean)/deviation of the training data as the value).")
    var numericTransform: NumericTransform = .log

    @Option(help: "Hash space: 2^bits slots.")
    var hashBits: Int = 20

    @Option(help: "n ≥ 1: keep a vocabulary of the categorical values seen at least n times in training (one slot each); rarer and unseen values share one slot per column. 0: hash every value into 2^--hash-bits slots instead.")
    var vocabularyMinCount: Int = TrainJob.defaultVocabularyMinCount

    @Option(help: "Model: lr (logistic regression, FTRL-Proximal), fm (factorization machine), deepfm or dcnv2 (mini-batches).")
    var model: ModelKind = .lr

    @Option(help: "fm, deepfm, dcnv2: factors (embedding size) per feature.")
    var factors: Int = 8

    @Option(help: "fm, deepfm, dcnv2: optimizer, adagrad or adam (default: adagrad for fm, adam for deepfm and dcnv2).")
    var optimizer: OptimizerSettings.Kind?

    @Option(help: "fm, deepfm, dcnv2: learning rate (default: 0.05 with adagrad, 0.001 with adam).")
    var learningRate: Double?

    @Option(help: "fm, deepfm, dcnv2 --wide: optimizer of the linear weights, ftrl (FTRL-Proximal with --alpha, --beta, --l1, --l2 on the batch's summed gradient, as Wide & Deep's wide part) or the --optimizer (default).")
    var linearOptimizer: LinearOptimizer?

    @Flag(help: "dcnv2: add a wide part, per-slot linear weights and a bias, to the logit (trained by --linear-optimizer).")
    var wide: Bool = false

    @Option(help: "fm, deepfm, dcnv2: rows per mini-batch.")
    var batchSize: Int = 256

    @Option(help: "fm, deepfm, dcnv2: L2 on the embedding rows and linear weights each batch names: their step takes g + λ·p (default: 1e-4; 0 turns it off).")
    var embeddingL2: Double = 1e-4

    @Option(help: "fm, deepfm, dcnv2: decoupled decay δ of the embedding rows and linear weights: after every step every row, named or not, is multiplied by 1 − learning rate·δ (applied lazily, exactly).")
    var embeddingDecay: Double = 0

    @Option(help: "deepfm, dcnv2: L2 on the dense layers' weights and biases, every step (g + λ·p).")
    var denseL2: Double = 0

    @Option(help: "deepfm, dcnv2: dropout rate on the MLP's hidden layers while training (0: none).")
    var dropout: Double = 0

    @Option(help: "Start of the output bias: ctr (the logit of the training click-through rate) or zero (the bias at 0; DCN-v2's last layer bias at its random draw).")
    var biasInit: BiasInit = .ctr

    @Option(help: "deepfm, dcnv2, conversion models: comma-separated hidden layer widths of the MLP (ReLU) (default: 256,128; each tower of a conversion model 64,32).")
    var hidden: String?

    @Option(help: "dcnv2: cross layers (default 2); conversion models: cross layers in each tower (default 0: MLP towers).")
    var crossLayers: Int?

    @Option(help: "deepfm, dcnv2: threads per mini-batch (the model is reproducible for a fixed seed and thread count).")
    var threads: Int = 2

    @Option(help: "With --valid: stop after this many epochs without a better validation log loss, and keep the best epoch's model.")
    var patience: Int = 2

    @Option(name: [.customLong("max-epochs"), .customLong("epochs")],
            help: "Passes over the training data: with --valid the most (early stopping; default 20), without it exactly this many (default 1).")
    var epochs: Int?

    @Option(help: "FTRL α (learning rate scale).")
    var alpha: Double = 0.05

    @Option(help: "FTRL β.")
    var beta: Double = 1

    @Option(help: "lr, --linear-optimizer ftrl: FTRL L1 regularisation.")
    var l1: Double = 1

    @Option(help: "lr, --linear-optimizer ftrl: FTRL L2 regularisation.")
    var l2: Double = 1

    @Option(help: "Keep each negative training row with this probability (1: all); predictions are corrected by p/(p + (1 − p)/r).")
    var negativeRate: Double = 1

    @Option(help: "Calibration fitted on --valid and stored in the model: none, platt or isotonic.")
    var calibrate: CalibrationKind = .none

    @Option(help: "Seed of the initial weights and of the negative downsampling.")
    var seed: UInt64 = 1

    func validate() throws {
        if factors < 1 || batchSize < 1 || !((learningRate ?? 1) > 0) { throw ValidationError("--factors and --batch-size must be ≥ 1 and --learning-rate > 0") }
        if !(embeddingL2 >= 0) || !(denseL2 >= 0) || !(embeddingDecay >= 0) {
            throw ValidationError("--embedding-l2, --embedding-decay and --dense-l2 must be ≥ 0")
        }
        if !((learningRate ?? 0.001) * embeddingDecay < 1) { throw ValidationError("--learning-rate × --embedding-decay must be < 1 (it is the share a row loses per step)") }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1)") }
        let main = optimizer ?? (model == .fm ? .adagrad : .adam)
        if let linearOptimizer, linearOptimizer != .ftrl && linearOptimizer.rawValue != main.rawValue {
            throw ValidationError("--linear-optimizer must be ftrl or, as without it, the --optimizer (\(main.rawValue)); got '\(linearOptimizer.rawValue)'")
        }
        if wide && model != .dcnv2 { throw ValidationError("--wide applies to dcnv2 (fm and deepfm always have linear weights)") }
        if linearOptimizer != nil && !([.fm, .deepfm].contains(model) || wide) {
            throw ValidationError("--linear-optimizer applies to the models with linear weights: fm, deepfm and dcnv2 --wide")
        }
        if hiddenWidths == nil { throw ValidationError("--hidden must be comma-separated positive widths, e.g. 256,128 (got '\(hidden ?? "")')") }
        if towerCrossLayers < 0 || towerCrossLayers > 8 { throw ValidationError("--cross-layers must be 0…8") }
        if let kind = model.conversion {
            if conversionLabel == nil { throw ValidationError("--model \(kind.rawValue) is a conversion model: name the conversion label column with --conversion-label (e.g. purchase)") }
            if conversionLabel == label { throw ValidationError("--conversion-label must be another column than --label (\(label))") }
            if dataFormat == .funnel && conversionLabel != "purchase" {
                throw ValidationError("--data-format funnel: the training table's conversion label is its purchase column; pass --conversion-label purchase")
            }
            if calibrate != .none { throw ValidationError("--calibrate applies to click models; a conversion model's heads are evaluated for calibration by funnel evaluate") }
            if wide { throw ValidationError("--wide applies to dcnv2; a conversion model's towers have no linear weights") }
            if negativeRate < 1 { throw ValidationError("--negative-rate: a conversion model trains on every impression (the unclicked ones are what it corrects for)") }
            if !(propensityClip > 0 && propensityClip < 1) { throw ValidationError("--propensity-clip must be in (0, 1)") }
            if !(counterfactualWeight >= 0) || !(constraintWeight >= 0) { throw ValidationError("--counterfactual-weight and --constraint-weight must be ≥ 0") }
            if sharedEmbedding && kind != .naiveCVR { throw ValidationError("--shared-embedding applies to naive-cvr; the entire-space models always share their embeddings") }
        } else if conversionLabel != nil {
            throw ValidationError("--conversion-label applies to the conversion models (naive-cvr, esmm, escm2-ips, escm2-dr, dcmt, choruscvr), not \(model.rawValue)")
        }
        if !(1...64).contains(threads) { throw ValidationError("--threads must be 1…64") }
        if vocabularyMinCount < 0 { throw ValidationError("--vocabulary-min-count must be ≥ 0") }
        if patience < 1 { throw ValidationError("--patience must be ≥ 1") }
        if !(1...28).contains(hashBits) { throw ValidationError("--hash-bits must be 1…28") }
        if (epochs ?? 1) < 1 { throw ValidationError("--max-epochs must be ≥ 1") }
        if !(negativeRate > 0 && negativeRate <= 1) { throw ValidationError("--negative-rate must be in (0, 1]") }
        if calibrate != .none && valid == nil { throw ValidationError("--calibrate \(calibrate.rawValue) is fitted on the validation set: pass --valid") }
        if dataFormat == .csv && splitList(categorical).isEmpty && splitList(numeric).isEmpty {
            throw ValidationError("name at least one feature column with --categorical or --numeric")
        }
        if !(alpha > 0) || !(beta >= 0) || !(l1 >= 0) || !(l2 >= 0) { throw ValidationError("--alpha must be > 0 and --beta, --l1, --l2 ≥ 0") }
    }

    var hiddenWidths: [Int]? {
        let parts = splitList(hidden ?? (model.conversion != nil ? "64,32" : "256,128")).map { Int($0) }
        guard parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.map { $0! }
    }

    /// The cross layers: as given, else 2 for dcnv2 and 0 (MLP towers) for the conversion models.
    var towerCrossLayers: Int { crossLayers ?? (model.conversion != nil ? 0 : 2) }

    /// The training job these options describe.
    var job: TrainJob {
        var job = TrainJob(data: data)
        job.valid = valid
        job.dataFormat = dataFormat
        job.configPath = config
        job.positionFeature = positionFeature == .position
        job.label = label
        job.categorical = splitList(categorical)
        job.numeric = splitList(numeric)
        job.numericTransform = numericTransform
        job.hashBits = hashBits
        job.vocabularyMinCount = vocabularyMinCount
        job.model = model
        job.factors = factors
        job.optimizer = optimizer
        job.learningRate = learningRate
        job.linearFTRL = linearOptimizer == .ftrl
        job.wide = wide
        job.batchSize = batchSize
        job.hidden = hiddenWidths ?? []
        job.crossLayers = towerCrossLayers
        job.conversionLabel = conversionLabel
        job.propensityClip = propensityClip
        job.counterfactualWeight = counterfactualWeight
        job.constraintWeight = constraintWeight
        job.sharedEmbedding = sharedEmbedding
        job.threads = threads
        job.patience = patience
        job.epochs = epochs
        job.embeddingL2 = embeddingL2
        job.denseL2 = denseL2
        job.embeddingDecay = embeddingDecay
        job.dropout = dropout
        job.biasInit = biasInit
        job.alpha = alpha
        job.beta = beta
        job.l1 = l1
        job.l2 = l2
        job.negativeRate = negativeRate
        job.calibrate = calibrate
        job.seed = seed
        return job
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a click model (FTRL logistic regression, factorization machine, DeepFM or DCN-v2) on a CSV or Criteo-layout table, or a conversion model (naive-cvr, esmm, escm2-ips, escm2-dr, dcmt, choruscvr) on a CSV table with a click and a conversion label.")

    @OptionGroup var options: TrainingOptions

    @Option(help: "Where to write the model file.")
    var out: String

    @Option(help: "Also write the model as initialised, before its first training step, to this path (same file format), so that another implementation can start from the same weights.")
    var initialOut: String?

    func run() throws {
        let job = options.job
        let result = try job.run(note: printError)
        if let initialOut {
            try result.initial.write(to: initialOut)
            printError("wrote the initial weights to \(initialOut)")
        }
        if let e = result.validation, options.model.conversion != nil {
            func f(_ x: Double?) -> String { x.map { String(format: "%.5f", $0) } ?? "—" }
            print("validation CTCVR: rows \(e.rows), auc \(f(e.auc)), logloss \(f(e.logloss)), calibration ratio \(f(e.calibrationRatio)) (funnel evaluate gives every head)")
        } else if let e = result.validation {
            func f(_ x: Double?) -> String { x.map { String(format: "%.5f", $0) } ?? "—" }
            print("validation (\(options.calibrate == .none ? "uncalibrated" : options.calibrate.rawValue + "-calibrated on it")): rows \(e.rows), auc \(f(e.auc)), logloss \(f(e.logloss)), calibration ratio \(f(e.calibrationRatio))")
        }
        try result.model.write(to: out)
        printError("wrote \(out)")
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a click model: AUC, GAUC, log loss, normalized entropy, calibration; a conversion model per head (CTR on every row, CVR on the clicked rows, CTCVR on every row).")

    @Option(help: "Model file from funnel train.")
    var model: String

    @Option(help: "Table to evaluate (CSV with the model's columns and the label).")
    var data: String

    @Option(help: "Column whose values group rows for GAUC (impression-weighted).")
    var group: String?

    @Option(help: "Data format (csv, criteo or funnel); default: the model's.")
    var dataFormat: TableFormat?

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "Score every row at this position (models with a position feature); default: the logged positions.")
    var position: Int?

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(help: "Conversion models: the true probabilities of every row (funnel simulate --scenario selection-bias --truth: columns p_cvr and convert_if_clicked), for the entire-space CVR-AUC and the calibration of pCVR on the unclicked rows.")
    var truth: String?

    func run() throws {
        let file: ModelFile
        file = try ModelFile.read(path: model)
        if file.isConversionModel {
            try evaluateConversion(file)
            return
        }
        if truth != nil { throw ValidationError("--truth applies to conversion models; \(model) is a \(file.model) click model") }
        let funnelData = file.dataFormat == TableFormat.funnel.rawValue && (dataFormat ?? .funnel) == .funnel
        let table = try modelTable(file, data: data, format: dataFormat, configPath: config, group: group ?? (funnelData ? "user_id" : nil),
                                   position: position, note: printError)
        let p = file.predict(table)
        let e = ClickMetrics.evaluate(labels: table.labels, predictions: p, groups: table.groups)
        let (doc, warnings) = evaluationDocument(e)
        if format == .json { print(doc.serialized(pretty: true)); return }
        func f(_ v: Double?) -> String { v.map { String(format: "%.5f", $0) } ?? "—" }
        print("rows \(e.rows)  auc \(f(e.auc))  gauc \(f(e.gauc))  logloss \(f(e.logloss))  NE \(f(e.normalizedEntropy))  ECE \(f(e.ece))  calibration ratio \(f(e.calibrationRatio))")
        for w in warnings { print("warning: \(w)") }
    }

    func evaluateConversion(_ file: ModelFile) throws {
        let table = try modelTable(file, data: data, format: dataFormat, configPath: config, group: nil, position: position, note: printError)
        let truthRows = try truth.map { path throws(PipelineError) in try ConversionTruth.read(path: path, rows: table.rows) }
        let (ctr, cvr, ctcvr) = file.predictHeads(table)
        let e = ConversionEvaluation.evaluate(table, ctr: ctr, cvr: cvr, ctcvr: ctcvr, truth: truthRows)
        if format == .json { print(e.document.serialized(pretty: true)); return }
        func f(_ v: Double?) -> String { v.map { String(format: "%.5f", $0) } ?? "—" }
        func line(_ name: String, _ h: ClickEvaluation) -> String {
            "\(name)  rows \(h.rows)  auc \(f(h.auc))  logloss \(f(h.logloss))  NE \(f(h.normalizedEntropy))  ECE \(f(h.ece))  calibration ratio \(f(h.calibrationRatio))"
        }
        print(line("CTR   (all rows)    ", e.ctr))
        print(line("CVR   (clicked rows)", e.cvr))
        print(line("CTCVR (all rows)    ", e.ctcvr))
        if let t = e.truth {
            print("entire space (truth): CVR-AUC \(f(t.entireSpaceAUC)) (best possible \(f(t.bestEntireSpaceAUC)))  mean pCVR / mean true pCVR: unclicked \(f(t.unclickedCalibrationRatio)), clicked \(f(t.clickedCalibrationRatio))  (true CVR unclicked / clicked \(f(t.trueUnclickedOverClicked)))")
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a click model's probability for every row of a table.")

    @Option(help: "Model file from funnel train.")
    var model: String

    @Option(help: "Table (CSV with the model's feature columns; the label column must be present).")
    var data: String

    @Option(help: "Where to write one probability per row (with a header line `probability`); for a conversion model three per row, `p_ctr,p_cvr,p_ctcvr`.")
    var out: String

    @Option(help: "Data format (csv, criteo or funnel); default: the model's.")
    var dataFormat: TableFormat?

    @Option(help: "funnel data: funnel.yaml with the counting rules.")
    var config: String?

    @Option(help: "Models with a position feature score every row at this position, so that rankings compare relevance rather than slots.")
    var position: Int = 1

    func run() throws {
        let file: ModelFile
        let loading = ContinuousClock.now
        file = try ModelFile.read(path: model)
        printError("loaded the model in \(String(format: "%.4f", seconds(since: loading))) s")
        let table = try modelTable(file, data: data, format: dataFormat, configPath: config, group: nil, position: position, note: printError)
        let clock = ContinuousClock.now
        var text: String
        if file.isConversionModel {
            let (ctr, cvr, ctcvr) = file.predictHeads(table)
            printError("predicted \(table.rows) rows in \(String(format: "%.4f", seconds(since: clock))) s")
            text = "p_ctr,p_cvr,p_ctcvr\n"
            for r in 0..<table.rows { text += String(format: "%.9g,%.9g,%.9g\n", ctr[r], cvr[r], ctcvr[r]) }
        } else {
            let p = file.predict(table)
            printError("predicted \(table.rows) rows in \(String(format: "%.4f", seconds(since: clock))) s")
            text = "probability\n"
            for v in p { text += String(format: "%.9g\n", v) }
        }
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { throw CLIError("--out \(out): cannot write the file") }
    }
}

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search a click model's learning rate × L2 (× factors) on the validation set, print what was tried, and write the best model.",
        discussion: """
        Each trial trains with early stopping on --valid (up to --max-epochs, default 20) and is
        scored by its validation log loss. Default grid: learning rates 3e-4, 1e-3, 3e-3 (adam),
        0.01, 0.03, 0.1 (adagrad) or FTRL α 0.02, 0.05, 0.1, 0.2 (lr); L2 0, 1e-4, 1e-3 on the
        embeddings (FTRL L2 0.1, 1, 10 for lr). A grid larger than --budget is sampled by --tune-seed.
        """)

    @OptionGroup var options: TrainingOptions

    @Option(help: "Comma-separated learning rates to try (FTRL α for lr); default: see above.")
    var learningRates: String?

    @Option(help: "Comma-separated L2 strengths to try (--embedding-l2; FTRL --l2 for lr); default: see above.")
    var l2s: String?

    @Option(name: .customLong("factors-list"), help: "Comma-separated factor counts to try (fm, deepfm, dcnv2); default: --factors only.")
    var factorsList: String?

    @Option(help: "The most trainings; a larger grid is sampled.")
    var budget: Int = 12

    @Option(help: "Seed of the grid's sample when it is larger than --budget.")
    var tuneSeed: UInt64 = 1

    @Option(help: "Where to write the best model file.")
    var out: String

    func numbers(_ s: String?, _ name: String) throws -> [Double] {
        try splitList(s).map { item in
            guard let x = Double(item), x >= 0, x.isFinite else { throw ValidationError("--\(name): '\(item)' is not a number ≥ 0") }
            return x
        }
    }

    func validate() throws {
        if options.valid == nil { throw ValidationError("tuning compares settings on a validation set: pass --valid") }
        if budget < 1 { throw ValidationError("--budget must be ≥ 1") }
        if try numbers(learningRates, "learning-rates").contains(0) { throw ValidationError("--learning-rates must be > 0") }
        _ = try numbers(l2s, "l2s")
        if try numbers(factorsList, "factors-list").contains(where: { $0 < 1 || $0 != $0.rounded() }) {
            throw ValidationError("--factors-list must be whole numbers ≥ 1")
        }
    }

    func run() throws {
        var job = TuneJob(base: options.job)
        job.learningRates = try numbers(learningRates, "learning-rates")
        job.l2s = try numbers(l2s, "l2s")
        job.factors = try numbers(factorsList, "factors-list").map { Int($0) }
        job.budget = budget
        job.seed = tuneSeed
        let trials = job.trials()
        printError("tuning \(options.model.rawValue): \(trials.count) trainings")
        let l2Name = options.model == .lr ? "ftrl_l2" : "embedding_l2"
        let rateName = options.model == .lr ? "alpha" : "learning_rate"
        print(["trial", rateName, l2Name, "factors", "epochs", "best_epoch", "valid_logloss", "valid_auc", "seconds"].joined(separator: "\t"))
        var n = 0
        let result = try job.run(note: printError) { o in
            n += 1
            print([String(n), String(o.trial.learningRate), String(o.trial.l2), String(o.trial.factors), String(o.epochsRun), String(o.bestEpoch),
                   String(format: "%.6f", o.validationLogLoss), o.validationAUC.map { String(format: "%.5f", $0) } ?? "—",
                   String(format: "%.1f", o.seconds)].joined(separator: "\t"))
        }
        let b = result.outcomes[result.best]
        print("best: trial \(result.best + 1) (\(rateName) \(b.trial.learningRate), \(l2Name) \(b.trial.l2), factors \(b.trial.factors)), validation log loss \(String(format: "%.6f", b.validationLogLoss)) at epoch \(b.bestEpoch)")
        try result.model.model.write(to: out)
        printError("wrote \(out)")
    }
}
