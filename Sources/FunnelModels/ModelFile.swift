import Foundation

/// A trained click model on disk: a versioned, self-describing JSON document (model kind, feature
/// spec with hash bits and numeric transform, training settings, calibration) whose weights are
/// little-endian Float32 values in base64.
public struct ModelFile: Sendable {
    public static let format = "funnel-ctr-model"
    public static let version = 1

    public var model: String
    /// The data format the model was trained on (`csv` or `criteo`): evaluate and predict default to it.
    public var dataFormat: String
    public var spec: FeatureSpec
    public var ftrl: FTRLSettings?
    public var weights: [Float]
    public var trainingRows: Int
    /// Share of negatives kept in training (1: none dropped); predictions are corrected for it.
    public var negativeRate = 1.0
    public var calibration = Calibration.none
    /// Factorization machine: factors per slot (the weights hold w, the bias, then V); 0 for `lr`.
    public var factors = 0
    public var optimizer: OptimizerSettings? = nil
    /// DeepFM / DCN-v2: the network's shapes (the weights hold w (DeepFM), the bias, V, then the
    /// dense layers in `DeepArchitecture` order).
    public var architecture: DeepArchitecture? = nil

    public init(model: String, dataFormat: String = "csv", spec: FeatureSpec, ftrl: FTRLSettings?, weights: [Float], trainingRows: Int) {
        self.model = model
        self.dataFormat = dataFormat
        self.spec = spec
        self.ftrl = ftrl
        self.weights = weights
        self.trainingRows = trainingRows
    }

    struct Document: Codable {
        var format: String
        var version: Int
        var model: String
        var dataFormat: String
        var spec: FeatureSpec
        var ftrl: FTRLSettings?
        var trainingRows: Int
        var negativeRate: Double
        var calibration: Calibration
        var factors: Int
        var optimizer: OptimizerSettings?
        var architecture: DeepArchitecture?
        /// The spec's vocabulary keys, little-endian UInt64 in base64 (vocabulary mode only).
        var vocabulary: String?
        var weightCount: Int
        var weights: String
    }

    public func write(to path: String) throws(ModelError) {
        let data = weights.withUnsafeBufferPointer { Data(buffer: $0) }
        let doc = Document(format: Self.format, version: Self.version, model: model, dataFormat: dataFormat, spec: spec, ftrl: ftrl, trainingRows: trainingRows,
                           negativeRate: negativeRate, calibration: calibration, factors: factors, optimizer: optimizer, architecture: architecture,
                           vocabulary: spec.vocabularyMinCount > 0 ? spec.vocabulary.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString() : nil,
                           weightCount: weights.count, weights: data.base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let json = try? encoder.encode(doc), FileManager.default.createFile(atPath: path, contents: json) else {
            throw ModelError("\(path): cannot write the model file")
        }
    }

    public static func read(path: String) throws(ModelError) -> ModelFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it exists but cannot be read (permissions, or a directory)"
                                                                     : "no such file; give the path funnel train wrote with --out"
            throw ModelError("\(path): cannot read the model file: \(reason)")
        }
        struct Header: Codable { var format: String?; var version: Int? }
        guard let header = try? JSONDecoder().decode(Header.self, from: data), header.format == format else {
            throw ModelError("\(path): not a Funnel click-model file (expected \"format\": \"\(format)\"); train one with funnel train")
        }
        guard header.version == version else {
            throw ModelError("\(path): model file version \(header.version.map(String.init) ?? "?") is not supported by this funnel (version \(version)); retrain the model")
        }
        let doc: Document
        do { doc = try JSONDecoder().decode(Document.self, from: data) } catch {
            throw ModelError("\(path): the model file is damaged (\(error)); retrain the model")
        }
        guard let raw = Data(base64Encoded: doc.weights), raw.count == doc.weightCount * 4 else {
            throw ModelError("\(path): the model's weights are damaged; retrain the model")
        }
        let weights = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var spec = doc.spec
        if spec.vocabularyMinCount > 0 {
            guard let text = doc.vocabulary, let bytes = Data(base64Encoded: text), bytes.count % 8 == 0 else {
                throw ModelError("\(path): the model's vocabulary is missing or damaged; retrain the model")
            }
            spec.vocabulary = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        }
        var file = ModelFile(model: doc.model, dataFormat: doc.dataFormat, spec: spec, ftrl: doc.ftrl, weights: weights, trainingRows: doc.trainingRows)
        file.negativeRate = doc.negativeRate
        file.calibration = doc.calibration
        file.factors = doc.factors
        file.optimizer = doc.optimizer
        file.architecture = doc.architecture
        let expected: Int
        switch doc.model {
        case "fm": expected = spec.slots * (doc.factors + 1) + 1
        case "lr": expected = spec.slots + 1
        case "deepfm", "dcnv2":
            guard let a = doc.architecture, a.kind.rawValue == doc.model, a.fields == spec.fieldCount else {
                throw ModelError("\(path): a \(doc.model) model file without a matching architecture; retrain the model")
            }
            expected = (a.hasLinear ? spec.slots : 0) + 1 + spec.slots * a.dim + a.denseCount
        default: throw ModelError("\(path): unknown model kind '\(doc.model)'; retrain the model")
        }
        guard weights.count == expected else {
            throw ModelError("\(path): the model holds \(weights.count) weights, a \(doc.model) model of \(spec.slots) slots needs \(expected); retrain the model")
        }
        return file
    }

    /// Calibrated click probabilities for the rows of `table`: σ(logit), corrected for negative
    /// downsampling, then the stored calibration.
    public func predict(_ table: Table, threads: Int = 2) -> [Double] {
        let logits: [Double]
        if let a = architecture {
            logits = Self.deepModel(a, slots: spec.slots, weights: weights).logits(table, threads: threads)
        } else if model == "fm" {
            let s = spec.slots
            let fm = FactorizationMachine<Float>(slots: s, factors: factors, bias: weights[s], w: Array(weights[0..<s]), v: Array(weights[(s + 1)...]))
            logits = fm.logits(table)
        } else {
            logits = LinearModel(weights: weights).logits(table)
        }
        return logits.map { calibration.apply(correctDownsampling(1 / (1 + exp(-$0)), rate: negativeRate)) }
    }

    /// The weights of a DeepFM/DCN-v2 model in file order.
    public static func deepWeights(_ m: DeepModel<Float>) -> [Float] { m.w + [m.bias] + m.v + m.dense }

    /// A DeepFM/DCN-v2 model from weights in file order.
    public static func deepModel(_ a: DeepArchitecture, slots: Int, weights: [Float]) -> DeepModel<Float> {
        let nw = a.hasLinear ? slots : 0, nv = slots * a.dim
        return DeepModel(architecture: a, slots: slots, bias: weights[nw], w: Array(weights[0..<nw]),
                         v: Array(weights[(nw + 1)..<(nw + 1 + nv)]), dense: Array(weights[(nw + 1 + nv)...]))
    }
}
