import Foundation
import FunnelBase
@testable import FunnelModels
import Testing

/// The model file's reader: the base64 members it decodes itself (checked against Foundation's
/// encoder and decoder), files written with escaped slashes or reformatted by another JSON writer,
/// and damaged files, which must give an error and never crash.
struct ModelFileTests {
    /// A DCN-v2 with a vocabulary, written to a fresh directory (removed by the caller's `defer`).
    static func written() throws -> (file: ModelFile, path: String, dir: URL) {
        var spec = FeatureSpec(label: "click", categorical: ["a", "b", "c"], numeric: [], hashBits: 4)
        spec.vocabularyMinCount = 1
        var g = SplitMix64(seed: 11)
        spec.vocabulary = (0..<40).map { _ in g.next() }.sorted()
        let a = DeepArchitecture(kind: .dcnv2, fields: 3, dim: 4, hidden: [5, 3], crossLayers: 2, wide: true)
        let m = DeepModel<Float>(architecture: a, slots: spec.slots, seed: 5, scale: 0.5)
        var file = ModelFile(model: "dcnv2", spec: spec, ftrl: nil, weights: ModelFile.deepWeights(m), trainingRows: 7)
        file.architecture = a
        file.factors = 4
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-modelfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("model.json").path
        try file.write(to: path)
        return (file, path, dir)
    }

    static func same(_ back: ModelFile, _ file: ModelFile) {
        #expect(back.weights == file.weights)
        #expect(back.spec == file.spec && back.spec.vocabulary == file.spec.vocabulary)
        #expect(back.architecture == file.architecture && back.trainingRows == file.trainingRows)
    }

    @Test func decodesWhatFoundationEncodes() {
        var g = SplitMix64(seed: 3)
        for n in 1...67 {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let text = Data(Data(bytes).base64EncodedString().utf8)
            #expect(ModelFileMembers.decode(text, 0..<text.count, as: UInt8.self) == bytes, "\(n) bytes")
        }
        // Four bytes as one UInt32, little-endian.
        let word = Data("AQIDBA==".utf8)
        #expect(ModelFileMembers.decode(word, 0..<word.count, as: UInt32.self) == [0x0403_0201])
        #expect(ModelFileMembers.decode(word, 0..<word.count, as: UInt64.self) == nil, "4 bytes are not a whole UInt64")
        for bad in ["AQI", "A===", "AQ!D", "AQID BA=="] {
            let text = Data(bad.utf8)
            #expect(Data(base64Encoded: text) == nil, "Foundation accepts \(bad)")
            #expect(ModelFileMembers.decode(text, 0..<text.count, as: UInt8.self) == nil, "\(bad) decoded")
        }
        // Padding inside the text (RFC 4648 allows it only at the end), which Foundation lets through.
        for bad in ["AQ=D", "====", "AA==AQID"] {
            let text = Data(bad.utf8)
            #expect(ModelFileMembers.decode(text, 0..<text.count, as: UInt8.self) == nil, "\(bad) decoded")
        }
    }

    @Test func readsWhatItWritesAndOlderOrReformattedFiles() throws {
        let (file, path, dir) = try Self.written()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("/") && !text.contains("\\/"), "slashes are written unescaped")
        Self.same(try ModelFile.read(path: path), file)
        let cut = ModelFileMembers.cutBase64(Data(text.utf8), names: ["weights", "vocabulary"])
        #expect(Set(cut.members.keys) == ["weights", "vocabulary"] && cut.text.count < 2_000)

        // As written before slashes were left unescaped.
        let escaped = dir.appendingPathComponent("escaped.json").path
        try text.replacingOccurrences(of: "/", with: "\\/").write(toFile: escaped, atomically: true, encoding: .utf8)
        Self.same(try ModelFile.read(path: escaped), file)

        // Reformatted by another writer: indented, members in its own order, slashes escaped.
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let pretty = dir.appendingPathComponent("pretty.json").path
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: pretty))
        Self.same(try ModelFile.read(path: pretty), file)

        // A base64 member carrying another escape (\u0041 for A) is left to JSONDecoder.
        let first = try #require(text.range(of: "\"weights\":\""))
        let unicode = dir.appendingPathComponent("unicode.json").path
        var changed = text
        if let a = changed[first.upperBound...].firstIndex(of: "A") {
            changed.replaceSubrange(a...a, with: "\\u0041")
            try changed.write(toFile: unicode, atomically: true, encoding: .utf8)
            Self.same(try ModelFile.read(path: unicode), file)
        }
    }

    @Test func damagedFilesGiveAnErrorNeverACrash() throws {
        let (file, path, dir) = try Self.written()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let text = String(decoding: bytes, as: UTF8.self)

        // A weight character that is not base64.
        let start = try #require(text.range(of: "\"weights\":\"")).upperBound
        var bad = text
        bad.replaceSubrange(start...start, with: "!")
        let badPath = dir.appendingPathComponent("bad.json").path
        try bad.write(toFile: badPath, atomically: true, encoding: .utf8)
        do {
            _ = try ModelFile.read(path: badPath)
            Issue.record("a damaged weight was read")
        } catch { #expect(error.description.contains("weights are damaged"), "\(error.description)") }

        // Truncations, deleted bytes and bytes replaced by JSON's structural characters.
        var g = SplitMix64(seed: 17)
        let marks = Array("\"\\{}[],: =A/".utf8)
        let target = dir.appendingPathComponent("mutant.json").path
        var read = 0, refused = 0
        for round in 0..<400 {
            var m = bytes
            let at = Int(g.next() % UInt64(m.count))
            switch round % 3 {
            case 0: m.removeSubrange(at...)
            case 1: m.remove(at: at)
            default: m[at] = marks[Int(g.next() % UInt64(marks.count))]
            }
            _ = FileManager.default.createFile(atPath: target, contents: Data(m))
            do {
                let back = try ModelFile.read(path: target)
                #expect(back.weights.count == file.weights.count)
                read += 1
            } catch {
                #expect(error.description.hasPrefix(target), "\(error.description)")
                refused += 1
            }
        }
        #expect(read + refused == 400 && refused > 200, "read \(read), refused \(refused)")
    }
}

