import Foundation
import FunnelBase

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
    /// A conversion model's objective (`model` is its kind's name; the architecture has its towers).
    public var conversion: ConversionObjective? = nil

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
        var conversion: ConversionObjective?
        /// The spec's vocabulary keys, little-endian UInt64 in base64 (vocabulary mode only).
        var vocabulary: String?
        var weightCount: Int
        var weights: String
    }

    public func write(to path: String) throws(ModelError) {
        let data = weights.withUnsafeBufferPointer { Data(buffer: $0) }
        let doc = Document(format: Self.format, version: Self.version, model: model, dataFormat: dataFormat, spec: spec, ftrl: ftrl, trainingRows: trainingRows,
                           negativeRate: negativeRate, calibration: calibration, factors: factors, optimizer: optimizer, architecture: architecture, conversion: conversion,
                           vocabulary: spec.vocabularyMinCount > 0 ? spec.vocabulary.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString() : nil,
                           weightCount: weights.count, weights: data.base64EncodedString())
        let encoder = JSONEncoder()
        // Unescaped slashes keep the base64 members free of escapes, so `read` decodes them in place.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let json = try? encoder.encode(doc), FileManager.default.createFile(atPath: path, contents: json) else {
            throw ModelError("\(path): cannot write the model file")
        }
    }

    public static func read(path: String) throws(ModelError) -> ModelFile {
        // Read, not mapped: a file another program truncates while it is being decoded must not
        // take the process down.
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it exists but cannot be read (permissions, or a directory)"
                                                                     : "no such file; give the path funnel train wrote with --out"
            throw ModelError("\(path): cannot read the model file: \(reason)")
        }
        // The weights and the vocabulary are most of the file: long base64 strings, which
        // JSONDecoder would scan and copy into Strings at about 200 MB/s (twice: the header check
        // reads the whole text too). They are cut out and decoded straight into their arrays; the
        // decoder reads the small rest.
        let (text, members) = ModelFileMembers.cutBase64(data, names: ["weights", "vocabulary"])
        struct Header: Codable { var format: String?; var version: Int? }
        guard let header = try? JSONDecoder().decode(Header.self, from: text), header.format == format else {
            // A file that names the format but is not whole JSON was cut short (a copy or a
            // write that did not finish) rather than being some other file.
            if data.prefix(1 << 16).range(of: Data("\"format\":\"\(format)\"".utf8)) != nil {
                throw ModelError("\(path): the model file is truncated or damaged (not complete JSON); copy it again or retrain the model")
            }
            throw ModelError("\(path): not a Funnel click-model file (expected \"format\": \"\(format)\"); train one with funnel train")
        }
        guard header.version == version else {
            throw ModelError("\(path): model file version \(header.version.map(String.init) ?? "?") is not supported by this funnel (version \(version)); retrain the model")
        }
        let doc: Document
        do { doc = try JSONDecoder().decode(Document.self, from: text) } catch {
            throw ModelError("\(path): the model file is damaged (\(error)); retrain the model")
        }
        func decoded<T>(_ name: String, _ inline: String?, as: T.Type) -> [T]? {
            if let range = members[name] { return ModelFileMembers.decode(data, range, as: T.self) }
            return inline.flatMap { Data(base64Encoded: $0) }.flatMap { raw in
                raw.count % MemoryLayout<T>.size == 0 ? raw.withUnsafeBytes { Array($0.bindMemory(to: T.self)) } : nil
            }
        }
        guard let weights = decoded("weights", doc.weights, as: Float.self), weights.count == doc.weightCount else {
            throw ModelError("\(path): the model's weights are damaged; retrain the model")
        }
        var spec = doc.spec
        if spec.vocabularyMinCount > 0 {
            guard let keys = decoded("vocabulary", doc.vocabulary, as: UInt64.self) else {
                throw ModelError("\(path): the model's vocabulary is missing or damaged; retrain the model")
            }
            spec.vocabulary = keys
        }
        var file = ModelFile(model: doc.model, dataFormat: doc.dataFormat, spec: spec, ftrl: doc.ftrl, weights: weights, trainingRows: doc.trainingRows)
        file.negativeRate = doc.negativeRate
        file.calibration = doc.calibration
        file.factors = doc.factors
        file.optimizer = doc.optimizer
        file.architecture = doc.architecture
        file.conversion = doc.conversion
        let expected: Int
        switch doc.model {
        case "fm": expected = spec.slots * (doc.factors + 1) + 1
        case "lr": expected = spec.slots + 1
        case "deepfm", "dcnv2":
            guard let a = doc.architecture, a.kind.rawValue == doc.model, a.fields == spec.fieldCount else {
                throw ModelError("\(path): a \(doc.model) model file without a matching architecture; retrain the model")
            }
            expected = (a.hasLinear ? spec.slots : 0) + 1 + spec.slots * a.dim + a.denseCount
        case _ where ConversionModelKind(rawValue: doc.model) != nil:
            let kind = ConversionModelKind(rawValue: doc.model)!
            guard let a = doc.architecture, a.towers == kind.towers, !a.hasLinear, a.fields == spec.fieldCount,
                  doc.conversion?.kind == kind, spec.conversionLabel != nil else {
                throw ModelError("\(path): a \(doc.model) model file without a matching architecture and objective; retrain the model")
            }
            expected = 1 + spec.slots * a.embeddingTables * a.dim + a.denseCount
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
        let calibration = calibration, rate = negativeRate
        let probability: @Sendable (Double) -> Double = { calibration.apply(correctDownsampling(1 / (1 + exp(-$0)), rate: rate)) }
        if let a = architecture {
            let logits = Self.deepModel(a, slots: spec.slots, weights: weights).logits(table, threads: threads)
            return Scoring.map(logits, threads: threads, probability)
        } else if model == "fm" {
            return Scoring.fmLogits(weights, slots: spec.slots, factors: factors, table, threads: threads, then: probability)
        } else {
            return Scoring.linearLogits(weights, table, threads: threads, then: probability)
        }
    }

    /// Whether this is a conversion model (two labels, several towers).
    public var isConversionModel: Bool { conversion != nil }

    /// A conversion model's probabilities for the rows of `table`: pCTR (the click tower), pCVR
    /// (the conversion tower: a conversion given a click) and pCTCVR = pCTR·pCVR. No calibration
    /// or downsampling correction applies to them (conversion models train on every row).
    public func predictHeads(_ table: Table, threads: Int = 2) -> (ctr: [Double], cvr: [Double], ctcvr: [Double]) {
        guard let a = architecture, a.towers >= 2 else { let p = predict(table, threads: threads); return (p, p, p) }
        let logits = Self.deepModel(a, slots: spec.slots, weights: weights).towerLogits(table, threads: threads)
        let probability: @Sendable (Double) -> Double = { 1 / (1 + exp(-$0)) }
        let ctr = Scoring.map(logits[0], threads: threads, probability), cvr = Scoring.map(logits[1], threads: threads, probability)
        return (ctr, cvr, zip(ctr, cvr).map { $0 * $1 })
    }

    /// The weights of a DeepFM/DCN-v2 model in file order.
    public static func deepWeights(_ m: DeepModel<Float>) -> [Float] { m.w + [m.bias] + m.v + m.dense }

    /// A DeepFM/DCN-v2 model from weights in file order.
    /// `slots`: the features' slots (the spec's).
    public static func deepModel(_ a: DeepArchitecture, slots featureSlots: Int, weights: [Float]) -> DeepModel<Float> {
        let slots = featureSlots * a.embeddingTables
        let nw = a.hasLinear ? slots : 0, nv = slots * a.dim
        return DeepModel(architecture: a, slots: slots, bias: weights[nw], w: Array(weights[0..<nw]),
                         v: Array(weights[(nw + 1)..<(nw + 1 + nv)]), dense: Array(weights[(nw + 1 + nv)...]))
    }
}

/// The long base64 members of a model file's top-level JSON object, found and decoded without
/// JSONDecoder. Weights are little-endian, as on every processor Funnel builds for.
enum ModelFileMembers {
    /// `data` with the value of each named top-level string member replaced by the empty string,
    /// and the byte range in `data` of each such member's base64 text. A member whose text holds an
    /// escape other than `\/` (the one escape base64 can carry) stays in the text for JSONDecoder,
    /// and so does the whole document when its outline is not an object of members: the decoder
    /// then gives its own error.
    static func cutBase64(_ data: Data, names: Set<String>) -> (text: Data, members: [String: Range<Int>]) {
        let found: [(name: String, range: Range<Int>)]? = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { return nil }
            return scan(UnsafeBufferPointer(start: base, count: raw.count), names: names)
        }
        guard let found, !found.isEmpty else { return (data, [:]) }
        var text = Data(capacity: data.count - found.reduce(0) { $0 + $1.range.count })
        var at = 0
        for cut in found {
            text.append(data[(data.startIndex + at)..<(data.startIndex + cut.range.lowerBound)])
            at = cut.range.upperBound
        }
        text.append(data[(data.startIndex + at)...])
        var members: [String: Range<Int>] = [:]
        for cut in found where members[cut.name] == nil { members[cut.name] = cut.range }
        return (text, members)
    }

    /// The values of type `T` that the base64 text at `range` of `data` encodes, or nil when it is
    /// not base64 or not a whole number of values.
    static func decode<T>(_ data: Data, _ range: Range<Int>, as: T.Type) -> [T]? {
        data.withUnsafeBytes { raw -> [T]? in
            let all = raw.bindMemory(to: UInt8.self)
            let text = UnsafeBufferPointer(rebasing: all[range])
            guard find(backslash, in: text, from: 0) < text.count else { return decode(text, as: T.self) }
            // Written before slashes were left unescaped: `\/` back to `/` first.
            var plain = [UInt8]()
            plain.reserveCapacity(text.count)
            var j = 0
            while j < text.count {
                let stop = find(backslash, in: text, from: j)
                plain.append(contentsOf: UnsafeBufferPointer(rebasing: text[j..<stop]))
                j = stop + 1   // past the backslash: the `/` it escapes starts the next span
            }
            return plain.withUnsafeBufferPointer { decode($0, as: T.self) }
        }
    }

    private static let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, slash: UInt8 = 0x2F

    /// 6-bit value of each base64 character; 0xFF for any other byte.
    private static let sextets: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    private static func decode<T>(_ s: UnsafeBufferPointer<UInt8>, as: T.Type) -> [T]? {
        let n = s.count
        guard n > 0, n % 4 == 0 else { return nil }
        let padding = s[n - 1] == UInt8(ascii: "=") ? (s[n - 2] == UInt8(ascii: "=") ? 2 : 1) : 0
        let bytes = n / 4 * 3 - padding, size = MemoryLayout<T>.size
        guard bytes % size == 0 else { return nil }
        // Groups of four characters without padding; text of a few megabytes and up is split
        // between both cores.
        let groups = (n - (padding > 0 ? 4 : 0)) / 4
        let parts = groups >= 1 << 19 ? 2 : 1
        var valid = true
        let values = [T](unsafeUninitializedCapacity: bytes / size) { buffer, count in
            let out = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt8.self)
            sextets.withUnsafeBufferPointer { table in
                let badParts = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: parts)
                defer { badParts.deallocate() }
                let shared = Shared((s: s.baseAddress!, out: out, table: table.baseAddress!, bad: badParts.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let (s, out, table, badOut) = shared.value
                    var bad: UInt32 = 0
                    var g = groups * part / parts
                    let end = groups * (part + 1) / parts
                    while g < end {
                        let i = 4 * g, o = 3 * g
                        let a = UInt32(table[Int(s[i])]), b = UInt32(table[Int(s[i + 1])])
                        let c = UInt32(table[Int(s[i + 2])]), d = UInt32(table[Int(s[i + 3])])
                        bad |= a | b | c | d
                        let v = a << 18 | b << 12 | c << 6 | d
                        out[o] = UInt8(truncatingIfNeeded: v >> 16)
                        out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                        out[o + 2] = UInt8(truncatingIfNeeded: v)
                        g += 1
                    }
                    badOut[part] = bad & 0xC0
                }
                var bad = badParts.reduce(0, |)
                if padding > 0 {
                    let i = 4 * groups, o = 3 * groups
                    let a = table[Int(s[i])], b = table[Int(s[i + 1])]
                    let c = padding == 1 ? table[Int(s[i + 2])] : 0
                    bad |= UInt32((a | b | c) & 0xC0)
                    out[o] = a << 2 | b >> 4
                    if padding == 1 { out[o + 1] = b << 4 | c >> 2 }
                }
                valid = bad == 0
            }
            count = bytes / size
        }
        return valid ? values : nil
    }

    /// The index of the first `byte` in `s` at or after `j` (memchr), or `s.count` when there is none.
    private static func find(_ byte: UInt8, in s: UnsafeBufferPointer<UInt8>, from j: Int) -> Int {
        guard j < s.count, let p = memchr(s.baseAddress! + j, Int32(byte), s.count - j) else { return s.count }
        return s.baseAddress!.distance(to: UnsafePointer(p.assumingMemoryBound(to: UInt8.self)))
    }

    /// Whether the escapes in a string's contents are all `\/`.
    private static func onlySlashEscapes(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var j = find(backslash, in: s, from: 0)
        while j < s.count {
            guard j + 1 < s.count, s[j + 1] == slash else { return false }
            j = find(backslash, in: s, from: j + 2)
        }
        return true
    }

    /// The named string members' contents, in text order; nil when the text is not an object of
    /// members.
    private static func scan(_ b: UnsafeBufferPointer<UInt8>, names: Set<String>) -> [(name: String, range: Range<Int>)]? {
        var s = JSONScanner(b)
        s.skipWhitespace()
        guard (try? s.expect(UInt8(ascii: "{"))) != nil else { return nil }
        var found: [(name: String, range: Range<Int>)] = []
        while true {
            s.skipWhitespace()
            guard let c = s.peek() else { return nil }
            if c == UInt8(ascii: "}") { return found }
            guard c == quote, let (keyStart, keyEnd, _) = try? s.scanString() else { return nil }
            let key = String(decoding: UnsafeBufferPointer(rebasing: b[keyStart..<keyEnd]), as: UTF8.self)
            s.skipWhitespace()
            guard (try? s.expect(UInt8(ascii: ":"))) != nil else { return nil }
            s.skipWhitespace()
            let start = s.index
            guard let end = s.spanValue() else { return nil }
            if b[start] == quote, names.contains(key), end - start > 2 {
                let contents = (start + 1)..<(end - 1)
                if onlySlashEscapes(UnsafeBufferPointer(rebasing: b[contents])) { found.append((key, contents)) }
            }
            s.skipWhitespace()
            guard let next = s.peek() else { return nil }
            s.index += 1
            if next == UInt8(ascii: ",") { continue }
            return next == UInt8(ascii: "}") ? found : nil
        }
    }
}
