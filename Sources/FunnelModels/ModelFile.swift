import Foundation

/// A trained click model on disk: a versioned, self-describing JSON document (model kind, feature
/// spec with hash bits and numeric transform, training settings, calibration) whose weights are
/// little-endian Float32 values in base64.
public struct ModelFile: Sendable {
    public static let format = "funnel-ctr-model"
    public static let version = 1

    public var model: String
    public var spec: FeatureSpec
    public var ftrl: FTRLSettings?
    public var weights: [Float]
    public var trainingRows: Int

    public init(model: String, spec: FeatureSpec, ftrl: FTRLSettings?, weights: [Float], trainingRows: Int) {
        self.model = model
        self.spec = spec
        self.ftrl = ftrl
        self.weights = weights
        self.trainingRows = trainingRows
    }

    struct Document: Codable {
        var format: String
        var version: Int
        var model: String
        var spec: FeatureSpec
        var ftrl: FTRLSettings?
        var trainingRows: Int
        var weightCount: Int
        var weights: String
    }

    public func write(to path: String) throws(ModelError) {
        let data = weights.withUnsafeBufferPointer { Data(buffer: $0) }
        let doc = Document(format: Self.format, version: Self.version, model: model, spec: spec, ftrl: ftrl, trainingRows: trainingRows,
                           weightCount: weights.count, weights: data.base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let json = try? encoder.encode(doc), FileManager.default.createFile(atPath: path, contents: json) else {
            throw ModelError("\(path): cannot write the model file")
        }
    }

    public static func read(path: String) throws(ModelError) -> ModelFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the model file") }
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
        return ModelFile(model: doc.model, spec: doc.spec, ftrl: doc.ftrl, weights: weights, trainingRows: doc.trainingRows)
    }
}
