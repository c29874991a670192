import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelModels

/// The layouts a click-model table can have.
public enum TableFormat: String, CaseIterable, Sendable {
    /// CSV with a header (--label, --categorical, --numeric).
    case csv
    /// Criteo's tab-separated layout: label, 13 integer and 26 categorical columns.
    case criteo
    /// A Funnel event log, turned into the training table (one row per round) in memory.
    case funnel
}

/// The feature spec of the Funnel training table (`funnel export-training`): item, position,
/// surface and context columns as categories, the user's history counts as numbers.
public func funnelSpec(contextKeys: [String], position: Bool, hashBits: Int, transform: NumericTransform) -> FeatureSpec {
    FeatureSpec(label: "click", categorical: ["item_id"] + (position ? ["position"] : []) + ["surface"] + contextKeys.map(TrainingExport.contextColumn),
                numeric: TrainingExport.numericColumns, hashBits: hashBits, numericTransform: transform)
}

/// The training table of an event log as CSV text (header first), with the context keys it has
/// columns for, its row count and the log's quarantined lines by reason.
public func trainingCSV(events: String, configPath: String?, contextKeys: [String]?, purchase: Bool = false) throws(PipelineError)
    -> (text: String, contextKeys: [String], rows: Int, quarantined: [(reason: String, count: Int)]) {
    let cfg = try loadConfig(configPath)
    let log = try readEvents(EventSource(paths: [events]))
    let (header, keys, rows) = TrainingExport.rows(log, config: cfg, contextKeys: contextKeys, purchase: purchase)
    guard !rows.isEmpty else {
        throw PipelineError("\(events): no rounds (viewable impressions of non-bot users), so there is nothing to train on; check the events (funnel validate) and the counting rules")
    }
    var text = header.joined(separator: ",") + "\n"
    text.reserveCapacity(rows.count * 48)
    for r in rows { text += r; text += "\n" }
    return (text, keys, rows.count, quarantineCounts(log))
}

/// Reads a click-model table in `format`. For Funnel event logs the training table is built in
/// memory; `spec == nil` then builds the spec from the log's context keys with `makeSpec`.
/// `note` receives what a user should see (quarantined lines of an event log).
public func readModelTable(path: String, format: TableFormat, spec: FeatureSpec?, configPath: String?, fit: Bool, group: String?,
                           overrides: [String: String] = [:], purchase: Bool = false, makeSpec: ([String]) -> FeatureSpec,
                           note: (String) -> Void = { _ in }) throws(PipelineError) -> (Table, FeatureSpec) {
    guard format == .funnel else {
        guard let spec else { throw PipelineError("\(path): a \(format.rawValue) table needs its feature columns") }
        do throws(ModelError) {
            return try TableReader.read(path: path, format: format.rawValue, spec: spec, group: group, fit: fit, overrides: overrides)
        } catch {
            throw .model(error)
        }
    }
    let wanted = spec.map { $0.categorical.compactMap(TrainingExport.contextKey(ofColumn:)) }
    let (text, keys, _, quarantined) = try trainingCSV(events: path, configPath: configPath, contextKeys: wanted, purchase: purchase)
    if let n = quarantineNote(quarantined, path) { note(n) }
    do throws(ModelError) {
        return try TableReader.readCSV(bytes: Array(text.utf8), name: "\(path) (training table)", spec: spec ?? makeSpec(keys),
                                       group: group, fit: fit, overrides: overrides)
    } catch {
        throw .model(error)
    }
}

/// The warning a user sees when an input's lines were quarantined, or nil when none were.
public func quarantineNote(_ quarantined: [(reason: String, count: Int)], _ path: String) -> String? {
    let total = quarantined.reduce(0) { $0 + $1.count }
    guard total > 0 else { return nil }
    let reasons = quarantined.sorted { $0.reason < $1.reason }.map { "\($0.reason) \($0.count)" }.joined(separator: ", ")
    return "warning: \(path): \(total) lines were quarantined (\(reasons)) and are not counted; `funnel validate --events \(path)` shows them"
}

/// The models `funnel train` fits: the click models, and the conversion models (two labels).
public enum ModelKind: String, CaseIterable, Sendable {
    case lr, fm, deepfm, dcnv2
    case naiveCVR = "naive-cvr", esmm, escm2IPS = "escm2-ips", escm2DR = "escm2-dr", dcmt, chorusCVR = "choruscvr"

    /// The conversion model's kind, or nil for a click model.
    public var conversion: ConversionModelKind? { ConversionModelKind(rawValue: rawValue) }
    /// Whether the model is trained in mini-batches by `DeepTrainer` (the networks).
    public var isNetwork: Bool { self == .deepfm || self == .dcnv2 || conversion != nil }
}

/// Calibration fitted on the validation set and stored in the model.
public enum CalibrationKind: String, CaseIterable, Sendable {
    case none, platt, isotonic
}

/// How the output bias starts: at the logit of the training click-through rate (so the first
/// steps learn features rather than the base rate), or as before that existed (`zero`: a model's
/// bias at 0, DCN-v2's last layer bias at its uniform draw).
public enum BiasInit: String, CaseIterable, Sendable {
    case ctr, zero
}

/// Training a click model: the data, the model's settings, early stopping and calibration.
public struct TrainJob: Sendable {
    public var data: String
    public var valid: String?
    public var dataFormat: TableFormat = .csv
    public var configPath: String?
    /// Funnel data: position as a categorical feature.
    public var positionFeature = true
    public var label = "click"
    /// The conversion label column (the conversion models).
    public var conversionLabel: String? = nil
    /// The conversion models: the propensity clip, ESCM²'s λ and DCMT's constraint weight.
    public var propensityClip = 0.05
    public var counterfactualWeight = 1.0
    public var constraintWeight = 0.001
    /// naive-cvr: the conversion tower reads the click tower's embedding table instead of its own.
    public var sharedEmbedding = false
    public var categorical: [String] = []
    public var numeric: [String] = []
    public var numericTransform: NumericTransform = .log
    public var hashBits = 20
    /// Categorical values seen fewer times in training share their column's "other" slot; 0 hashes
    /// every value into 2^hashBits slots instead.
    public var vocabularyMinCount = TrainJob.defaultVocabularyMinCount
    public var model: ModelKind = .lr
    public var factors = 8
    /// The optimizer of fm, deepfm and dcnv2 (default: adagrad for fm, adam for the networks).
    public var optimizer: OptimizerSettings.Kind?
    public var learningRate: Double?
    /// Train the linear weights with FTRL-Proximal (--alpha, --beta, --l1, --l2).
    public var linearFTRL = false
    public var wide = false
    /// Rows per mini-batch.
    public var batchSize = 256
    public var hidden = [256, 128]
    public var crossLayers = 2
    public var threads = 2
    public var patience = 2
    /// Passes over the training data: with a validation set the most (early stopping), without one
    /// exactly this many. Default: `defaultMaxEpochs` with a validation set, 1 without.
    public var epochs: Int?
    /// L2 on the embedding rows and linear weights a batch names (fm, deepfm, dcnv2).
    public var embeddingL2 = 1e-4
    /// Decoupled decay of the tables, every row every step (lazily); see `OptimizerSettings.embeddingDecay`.
    public var embeddingDecay = 0.0
    /// L2 on the dense layers, every step.
    public var denseL2 = 0.0
    /// Dropout on the MLP's hidden layers (deepfm, dcnv2).
    public var dropout = 0.0
    public var biasInit: BiasInit = .ctr
    public var alpha = 0.05
    public var beta = 1.0
    public var l1 = 1.0
    public var l2 = 1.0
    public var negativeRate = 1.0
    public var calibrate: CalibrationKind = .none
    public var seed: UInt64 = 1

    public static let defaultMaxEpochs = 20
    public static let defaultVocabularyMinCount = 2

    public init(data: String) { self.data = data }

    /// The --optimizer, or its default: adagrad for fm, adam for the networks.
    public var mainOptimizer: OptimizerSettings.Kind { optimizer ?? (model == .fm ? .adagrad : .adam) }
    /// The learning rate, or its default for the model and optimizer.
    public var mainLearningRate: Double { learningRate ?? (mainOptimizer == .adagrad ? 0.05 : 0.001) }

    /// The trained model, the model as initialised (before its first step), and the validation
    /// metrics (with the calibration applied) when there is a validation set, with the epochs run
    /// and the epoch kept.
    public struct Result: Sendable {
        public var model: ModelFile
        public var initial: ModelFile
        public var validation: ClickEvaluation?
        public var epochsRun: Int
        public var bestEpoch: Int
        /// The validation log loss of the kept epoch, before calibration.
        public var validationLogLoss: Double?
    }

    /// The tables a training reads: the (downsampled) training rows, the validation rows and the
    /// fitted feature spec. Read once, they serve any number of trainings (`funnel tune`).
    public struct Tables: Sendable {
        public var training: Table
        public var validation: Table?
        public var spec: FeatureSpec
    }

    func read(_ path: String, spec: FeatureSpec?, fit: Bool, note: (String) -> Void, conversionLabel: String? = nil) throws(PipelineError) -> (Table, FeatureSpec) {
        let clock = ContinuousClock.now
        let (table, fitted) = try readModelTable(path: path, format: dataFormat, spec: spec, configPath: configPath, fit: fit, group: nil,
                                                 purchase: conversionLabel != nil || spec?.conversionLabel != nil, makeSpec: { keys in
            var s = funnelSpec(contextKeys: keys, position: positionFeature, hashBits: hashBits, transform: numericTransform)
            s.vocabularyMinCount = vocabularyMinCount
            s.conversionLabel = conversionLabel
            return s
        }, note: note)
        note("read \(table.rows) rows of \(table.fields) fields from \(path) in \(String(format: "%.2f", seconds(since: clock))) s")
        return (table, fitted)
    }

    /// Reads the training and validation tables (the feature spec fitted on the training rows).
    public func readTables(note: (String) -> Void = { _ in }) throws(PipelineError) -> Tables {
        var spec = dataFormat == .criteo
            ? TableReader.criteoSpec(hashBits: hashBits, numericTransform: numericTransform)
            : FeatureSpec(label: label, categorical: categorical, numeric: numeric, hashBits: hashBits, numericTransform: numericTransform)
        spec.vocabularyMinCount = vocabularyMinCount
        if model.conversion != nil {
            guard let conversionLabel else {
                throw PipelineError("--model \(model.rawValue) is a conversion model: name the conversion label column with --conversion-label (e.g. purchase)")
            }
            spec.conversionLabel = conversionLabel
        }
        let (full, fitted) = try read(data, spec: dataFormat == .funnel ? nil : spec, fit: true, note: note,
                                      conversionLabel: dataFormat == .funnel ? spec.conversionLabel : nil)
        if vocabularyMinCount > 0 {
            note("vocabulary: \(fitted.vocabulary.count) values seen at least \(vocabularyMinCount) times; rarer values share one slot per column (--vocabulary-min-count 0 hashes instead)")
        }
        let table = full.downsampled(rate: negativeRate, seed: seed)
        if negativeRate < 1 { note("negative downsampling at \(negativeRate): \(table.rows) of \(full.rows) training rows kept") }
        let validTable: Table?
        if let valid { validTable = try read(valid, spec: fitted, fit: false, note: note).0 } else { validTable = nil }
        return Tables(training: table, validation: validTable, spec: fitted)
    }

    /// Reads the tables and trains; `note` receives the progress lines (epochs, losses, timings).
    public func run(note: (String) -> Void = { _ in }) throws(PipelineError) -> Result {
        try train(readTables(note: note), note: note)
    }

    /// Trains on tables already read.
    public func train(_ tables: Tables, note: (String) -> Void = { _ in }) throws(PipelineError) -> Result {
        let table = tables.training, validTable = tables.validation, fitted = tables.spec
        guard table.rows > 0 else { throw PipelineError("\(data): no training rows") }
        var file = ModelFile(model: model.rawValue, dataFormat: dataFormat.rawValue, spec: fitted, ftrl: nil, weights: [], trainingRows: table.rows)
        file.negativeRate = negativeRate
        var o = OptimizerSettings()
        o.kind = mainOptimizer
        o.learningRate = mainLearningRate
        o.embeddingL2 = embeddingL2
        o.denseL2 = denseL2
        o.embeddingDecay = embeddingDecay
        o.dropout = model.isNetwork ? dropout : 0
        if linearFTRL {
            var f = FTRLSettings()
            f.alpha = alpha; f.beta = beta; f.l1 = l1; f.l2 = l2
            o.linearFTRL = f
        }
        if o.kind == .adam { o.epsilon = 1e-8 }
        // The logit of the training click-through rate (clamped away from 0 and 1).
        let rate = min(max(Double(table.labels.reduce(0, +)) / Double(table.rows), 1e-6), 1 - 1e-6)
        let start = Float(log(rate / (1 - rate)))
        // One pass over the training rows (its loss), and the current weights in file order.
        let pass: () -> Double
        let weights: () -> [Float]
        let lossName: String
        let batchSize = self.batchSize
        switch model {
        case .fm:
            var fm = FactorizationMachine<Float>(slots: fitted.slots, factors: factors, seed: seed)
            if biasInit == .ctr { fm.bias = start }
            var state = FMOptimizer<Float>(slots: fitted.slots, factors: factors, settings: o)
            var g = FactorizationMachine<Float>.Gradient(slots: fitted.slots, factors: factors)
            pass = { fm.epoch(table, optimizer: &state, batchSize: batchSize, gradient: &g) }
            weights = { fm.w + [fm.bias] + fm.v }
            file.factors = factors
            file.optimizer = o
            lossName = "mean training log loss"
        case .deepfm, .dcnv2, .naiveCVR, .esmm, .escm2IPS, .escm2DR, .dcmt, .chorusCVR:
            let a: DeepArchitecture
            var objective: ConversionObjective? = nil
            var cvr = 0.0
            if let kind = model.conversion {
                guard negativeRate >= 1 else { throw PipelineError("--negative-rate: conversion models train on every impression; drop --negative-rate") }
                guard let conversions = table.conversions else { throw PipelineError("\(data): no conversion labels were read") }
                // The naive model is a conversion model beside the click model: embeddings of its own
                // unless --shared-embedding; the entire-space models share one table by design.
                a = DeepArchitecture(kind: .dcnv2, fields: fitted.fieldCount, dim: factors, hidden: hidden, crossLayers: crossLayers, towers: kind.towers,
                                     separateEmbeddings: kind == .naiveCVR && !sharedEmbedding)
                objective = ConversionObjective(kind: kind, clip: propensityClip, lambda: counterfactualWeight, constraint: constraintWeight)
                let clicks = Double(table.labels.reduce(0, +)), converted = Double(conversions.reduce(0, +))
                cvr = min(max(converted / max(clicks, 1), 1e-6), 1 - 1e-6)
            } else {
                a = DeepArchitecture(kind: model == .deepfm ? .deepfm : .dcnv2, fields: fitted.fieldCount, dim: factors, hidden: hidden,
                                     crossLayers: crossLayers, wide: wide)
            }
            var m = DeepModel<Float>(architecture: a, slots: fitted.slots, seed: seed)
            if biasInit == .ctr {
                m.startOutput(at: start)
                // A conversion model's other towers start at their labels' rates in their own space:
                // conversions over the clicked rows; DCMT's counterfactual and ChorusCVR's
                // un-conversion towers at the complement; ESCM²-DR's imputed error at 0.
                if let kind = objective?.kind {
                    m.startOutput(tower: 1, at: Float(log(cvr / (1 - cvr))))
                    if kind == .dcmt || kind == .chorusCVR { m.startOutput(tower: 2, at: Float(log((1 - cvr) / cvr))) }
                    if kind == .escm2DR { m.startOutput(tower: 2, at: 0) }
                }
            }
            let trainer = DeepTrainer(model: m, optimizer: o, batchSize: batchSize, threads: threads, seed: seed, objective: objective)
            note("matrix kernel: \(MatrixKernel.active.rawValue) (FUNNEL_SIMD=avx2 or FUNNEL_SIMD=baseline caps it)")
            pass = { trainer.epoch(table) }
            weights = { ModelFile.deepWeights(trainer.model) }
            file.factors = factors
            file.optimizer = o
            file.architecture = a
            file.conversion = objective
            lossName = objective.map { "mean training loss (\($0.kind.rawValue))" } ?? "mean training log loss"
        case .lr:
            var settings = FTRLSettings()
            settings.alpha = alpha; settings.beta = beta; settings.l1 = l1; settings.l2 = l2
            var trainer = FTRLTrainer(slots: fitted.slots, settings: settings)
            file.ftrl = settings
            pass = { trainer.pass(table) }
            weights = { trainer.weights() }
            lossName = "progressive log loss"
        }
        var initial = file
        initial.weights = weights()
        // Epochs, with early stopping on the validation log loss.
        let most = epochs ?? (validTable == nil ? 1 : TrainJob.defaultMaxEpochs)
        var best: (loss: Double, weights: [Float], epoch: Int)? = nil
        var run = 0
        let clock = ContinuousClock.now
        for e in 1...max(most, 1) {
            let loss = pass()
            run = e
            file.weights = weights()
            var line = "epoch \(e): \(lossName) \(String(format: "%.6f", loss)) over \(table.rows) rows"
            if let v = validTable {
                let ll: Double
                if file.isConversionModel {
                    // Early stopping on the validation CTCVR log loss: observable on every row and
                    // depending on both heads, one criterion for every conversion model.
                    ll = ClickMetrics.evaluate(labels: ctcvrLabels(v), predictions: file.predictHeads(v, threads: threads).ctcvr).logloss
                    line += ", validation CTCVR log loss \(String(format: "%.6f", ll))"
                } else {
                    ll = ClickMetrics.evaluate(labels: v.labels, predictions: file.predict(v, threads: threads)).logloss
                    line += ", validation log loss \(String(format: "%.6f", ll))"
                }
                if best.map({ ll < $0.loss }) ?? true { best = (ll, file.weights, e) }
                note(line)
                if let b = best, e - b.epoch >= patience {
                    note("early stop: no better validation log loss for \(patience) epochs; keeping epoch \(b.epoch)")
                    break
                }
                continue
            }
            note(line)
        }
        if let best { file.weights = best.weights }
        if let best, validTable != nil, best.epoch == run, run == most, most > 1 {
            note("note: the validation log loss was still falling at the last epoch (\(run)); more epochs (--epochs) may help")
        }
        note("trained in \(String(format: "%.2f", seconds(since: clock))) s")
        var validation: ClickEvaluation? = nil
        if let v = validTable, file.isConversionModel {
            validation = ClickMetrics.evaluate(labels: ctcvrLabels(v), predictions: file.predictHeads(v).ctcvr)
        } else if let v = validTable {
            let raw = file.predict(v)
            switch calibrate {
            case .platt: file.calibration = Calibration.fitPlatt(predictions: raw, labels: v.labels)
            case .isotonic: file.calibration = Calibration.fitIsotonic(predictions: raw, labels: v.labels)
            case .none: break
            }
            validation = ClickMetrics.evaluate(labels: v.labels, predictions: file.predict(v))
        }
        return Result(model: file, initial: initial, validation: validation, epochsRun: run, bestEpoch: best?.epoch ?? run,
                      validationLogLoss: best?.loss)
    }
}

/// The CTCVR label of each row of a two-label table: clicked and converted.
public func ctcvrLabels(_ t: Table) -> [Float] {
    guard let c = t.conversions else { return [Float](repeating: 0, count: t.rows) }
    return zip(t.labels, c).map { $0 * $1 }
}

/// A model's table (in `format`, else the model's), with the position column fixed to `position`
/// when given and the model has one.
public func modelTable(_ file: ModelFile, data: String, format: TableFormat?, configPath: String?, group: String?, position: Int?,
                       note: (String) -> Void = { _ in }) throws(PipelineError) -> Table {
    let overrides = position.map { p in file.spec.categorical.contains("position") ? ["position": String(p)] : [:] } ?? [:]
    guard let chosen = format ?? TableFormat(rawValue: file.dataFormat) else {
        throw PipelineError("the model's data format '\(file.dataFormat)' is unknown; pass --data-format")
    }
    let clock = ContinuousClock.now
    let table = try readModelTable(path: data, format: chosen, spec: file.spec, configPath: configPath, fit: false, group: group,
                                   overrides: overrides, purchase: file.spec.conversionLabel != nil, makeSpec: { _ in file.spec }, note: note).0
    note("read \(table.rows) rows of \(table.fields) fields from \(data) in \(String(format: "%.2f", seconds(since: clock))) s")
    return table
}

/// A model's metrics on a table, as the JSON document of `funnel evaluate`, with its warnings.
public func evaluationDocument(_ e: ClickEvaluation) -> (document: JSONValue, warnings: [String]) {
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
    return (doc, warnings)
}

/// Seconds elapsed since `start`.
public func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
