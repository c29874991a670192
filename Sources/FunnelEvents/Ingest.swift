import Foundation
import FunnelBase

/// Input formats of event files.
public enum InputFormat: String, Sendable, CaseIterable {
    /// `parquet` is read by Spark's reader (`funnel report --engine spark`), never in-process.
    case auto, jsonl, csv, parquet
}

/// One quarantined line: where it was, why, and its raw bytes.
public struct QuarantineRow: Sendable {
    public var file: String
    public var line: Int
    public var rejection: Rejection
    public var raw: [UInt8]
    /// Length of the original line when `raw` holds only its beginning.
    public var originalLength: Int?

    public init(file: String, line: Int, rejection: Rejection, raw: [UInt8], originalLength: Int? = nil) {
        self.file = file
        self.line = line
        self.rejection = rejection
        self.raw = raw
        self.originalLength = originalLength
    }

    /// The row as one JSON Lines record: `file`, `line`, `reason`, `field`, `message`, `raw`
    /// (lossy UTF-8; `raw_base64` is added when the line is not valid UTF-8).
    public func jsonLine() -> String {
        var out = "{\"file\":\(jsonQuote(file)),\"line\":\(line),\"reason\":\"\(rejection.reason.rawValue)\","
        out += "\"field\":\(rejection.field.map(jsonQuote) ?? "null"),\"message\":\(jsonQuote(rejection.message)),"
        let valid = raw.withUnsafeBufferPointer { isValidUTF8($0) }
        out += "\"raw\":\(jsonQuote(String(decoding: raw, as: UTF8.self)))"
        if !valid { out += ",\"raw_base64\":\"\(Data(raw).base64EncodedString())\"" }
        if let originalLength { out += ",\"raw_truncated\":true,\"line_bytes\":\(originalLength)" }
        out += "}"
        return out
    }
}


/// Receives quarantined lines in input order (write them to a file, keep examples, ...).
public typealias QuarantineHandler = @Sendable (QuarantineRow) -> Void

/// The result of parsing one chunk on a worker thread.
struct ParsedChunk: Sendable {
    var file: Int
    var arena = ParseArena()
    var events: [ParsedEvent] = []
    var rejects: [QuarantineRow] = []
    var nonBlankLines = 0
}

/// Reads event files into an `EventLog`: parallel parsing and validation, serial merging in input order.
public enum EventReader {
    /// The files named by `path`: a file, `-` (standard input) or a directory (its regular,
    /// non-hidden files, sorted by name).
    public static func expand(_ path: String) throws(InputError) -> [String] {
        if path == "-" { return ["-"] }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InputError(path: path, "no such file or directory; pass a JSON Lines or CSV file, a directory of them, or - for standard input")
        }
        if !isDirectory.boolValue { return [path] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw InputError(path: path, "cannot list directory: \(error.localizedDescription)")
        }
        let files = names.filter { !$0.hasPrefix(".") }.sorted().map { (path as NSString).appendingPathComponent($0) }.filter {
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &dir) && !dir.boolValue
        }
        if files.isEmpty { throw InputError(path: path, "directory holds no event files") }
        return files
    }

    /// The uncompressed bytes of `files` (from `expand`), estimated from their sizes: a gzip file
    /// counts 8 times its size; standard input counts nothing.
    public static func estimatedBytes(_ files: [String]) -> Int {
        var bytes = 0
        for f in files where f != "-" {
            let size = (try? FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0
            bytes += f.hasSuffix(".gz") ? size * 8 : size
        }
        return bytes
    }

    /// Reads every file of `paths` (see `expand`) into one log.
    public static func read(
        paths: [String], format: InputFormat = .auto, onProgress: (@Sendable (Int) -> Void)? = nil,
        onQuarantine: QuarantineHandler? = nil
    ) throws(InputError) -> EventLog {
        var files: [String] = []
        for p in paths { files += try expand(p) }
        let state = MergeState()
        // Size the log from the input: an event line is rarely under 100 bytes.
        let bytes = estimatedBytes(files)
        if bytes > 0 { state.log.reserve(events: bytes / 100) }
        for (index, file) in files.enumerated() {
            let next = try openChunks(file: file, index: index, format: format)
            try pump(next, files: files, state: state, onProgress: onProgress, onQuarantine: onQuarantine)
        }
        return state.log
    }

    /// Reads in-memory text (for tests and the server).
    public static func read(text: String, name: String = "<memory>", format: InputFormat = .jsonl,
                            onQuarantine: QuarantineHandler? = nil) throws(InputError) -> EventLog {
        try read(bytes: Array(text.utf8), name: name, format: format, onQuarantine: onQuarantine)
    }

    /// Reads in-memory bytes.
    public static func read(bytes: [UInt8], name: String = "<memory>", format: InputFormat = .jsonl,
                            onQuarantine: QuarantineHandler? = nil) throws(InputError) -> EventLog {
        let state = MergeState()
        let stream = MemoryStream(bytes)
        let next: () throws(InputError) -> Chunk?
        if format == .csv {
            let c = CSVChunker(stream: stream, file: 0, path: name)
            next = c.next
        } else {
            let c = LineChunker(stream: stream, file: 0, path: name)
            next = c.next
        }
        try pump(next, files: [name], state: state, onQuarantine: onQuarantine)
        return state.log
    }

    static func openChunks(file: String, index: Int, format: InputFormat) throws(InputError) -> () throws(InputError) -> Chunk? {
        if format == .parquet {
            throw InputError(path: file, "Parquet is read through Spark: pass --engine spark --master local[2] (or a cluster's URL), or convert the file to JSON Lines or CSV")
        }
        let raw = try FileStream(path: file)
        let magic = try raw.peek(2)
        let gz = magic == [0x1F, 0x8B]
        let stream: ByteStream = gz ? try GzipStream(raw) : raw
        var chosen = format
        if chosen == .auto {
            let name = (file.hasSuffix(".gz") ? String(file.dropLast(3)) : file).lowercased()
            if name.hasSuffix(".csv") { chosen = .csv }
            else if name.hasSuffix(".jsonl") || name.hasSuffix(".json") || name.hasSuffix(".ndjson") { chosen = .jsonl }
        }
        if chosen == .csv {
            return CSVChunker(stream: stream, file: index, path: file).next
        }
        let lines = LineChunker(stream: stream, file: index, path: file)
        if chosen == .auto {
            // Sniff: a first non-blank line that does not start with '{' and names `type` is a CSV header.
            try lines.fill(1 << 16)
            let head = lines.buffer.prefix(1 << 16)
            if let firstNonBlank = head.split(separator: 0x0A).first(where: { !$0.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D } }) {
                let text = String(decoding: firstNonBlank, as: UTF8.self)
                if !text.hasPrefix("{") && !text.hasPrefix("[") && text.contains(",") && text.contains("type") {
                    let csv = CSVChunker(stream: MemoryPrefixStream(prefix: lines.buffer, rest: stream, eof: lines.eof), file: index, path: file)
                    return csv.next
                }
            }
        }
        return lines.next
    }

    /// Parses chunks into the log: `pipeline` with the in-memory merge.
    static func pump(_ next: @escaping () throws(InputError) -> Chunk?, files: [String], state: MergeState,
                     onProgress: (@Sendable (Int) -> Void)? = nil, onQuarantine: QuarantineHandler?) throws(InputError) {
        try pipeline(next, bytesRead: { state.bytesRead += $0; return state.bytesRead }, onProgress: onProgress,
                     parse: parseChunk) { parsed in
            state.merge(parsed, files: files, onQuarantine: onQuarantine)
            return true
        }
    }

    /// The readers' one driver, in steps: each step parses one batch of chunks (two per core),
    /// hands the previous batch's results to `consume` in input order, and reads the next batch,
    /// all at once. Stops early when `consume` returns false.
    static func pipeline<Parsed: Sendable>(
        _ next: @escaping () throws(InputError) -> Chunk?, bytesRead: (Int) -> Int, onProgress: (@Sendable (Int) -> Void)?,
        parse: @escaping @Sendable (Chunk) -> Parsed, consume: @escaping @Sendable ([Parsed]) -> Bool
    ) throws(InputError) {
        let workers = max(ProcessInfo.processInfo.activeProcessorCount, 1)
        var pending: [Parsed] = []
        var batch: [Chunk] = []
        while batch.count < workers * 2, let c = try next() { batch.append(c) }
        while true {
            onProgress?(bytesRead(batch.reduce(0) { $0 + $1.bytes.count }))
            if batch.isEmpty && pending.isEmpty { break }
            let results = ResultSlots<Parsed>(count: batch.count)
            let toConsume = pending
            let batchRef = batch
            let reader = NextBatch(next: next, size: workers * 2)
            let going = ResultSlots<Bool>(count: 1)
            DispatchQueue.concurrentPerform(iterations: batch.count + 2) { i in
                if i < batchRef.count {
                    results.set(i, parse(batchRef[i]))
                } else if i == batchRef.count {
                    going.set(0, toConsume.isEmpty ? true : consume(toConsume))
                } else {
                    reader.read()
                }
            }
            if going.values()[0] == false { return }
            if let e = reader.error { throw e }
            pending = results.values()
            batch = reader.chunks
        }
    }

    static func parseChunk(_ chunk: Chunk) -> ParsedChunk {
        var out = ParsedChunk(file: chunk.file)
        var parser = EventLineParser(source: chunk.bytes)
        var events: [ParsedEvent] = []
        (out.rejects, out.nonBlankLines) = parseLines(chunk, &parser) { e, _ in events.append(e) }
        out.events = events
        out.arena = parser.arena
        return out
    }

    /// Parses and validates every line of a chunk, in order: each accepted event goes to `onEvent`
    /// with the parser (whose arena holds its strings; when the arena shares the chunk's bytes,
    /// `EventLineParser(source:)`, strings are referred to in place); returns the rejected lines and
    /// the count of non-blank lines.
    static func parseLines(_ chunk: Chunk, _ parser: inout EventLineParser,
                           onEvent: (ParsedEvent, inout EventLineParser) -> Void) -> (rejects: [QuarantineRow], nonBlank: Int) {
        var rejects: [QuarantineRow] = []
        var nonBlank = 0
        if let length = chunk.oversizedLength {
            rejects.append(QuarantineRow(file: "", line: chunk.firstLine, rejection: Rejection(.invalidJSON, field: nil,
                "line is \(length) bytes, over the \(maxLineBytes)-byte limit for one event; split or drop it"),
                raw: Array(chunk.bytes.prefix(maxLineBytes)), originalLength: length))
            return (rejects, 1)
        }
        let inPlace = parser.arena.sourceCount > 0
        precondition(!inPlace || parser.arena.sourceCount == chunk.bytes.count, "the parser's arena shares this chunk")
        var event = ParsedEvent()
        chunk.bytes.withUnsafeBufferPointer { all in
            var start = 0
            var lineNumber = chunk.firstLine
            var recordIndex = 0
            let n = all.count
            while start < n {
                let (stop, end) = lineBounds(all, start, n)
                let line = UnsafeBufferPointer(rebasing: all[start..<stop])
                var blank = true
                for c in line where c != 0x20 && c != 0x09 && c != 0x0D { blank = false; break }
                if !blank {
                    nonBlank += 1
                    let number = chunk.csvLines?[recordIndex] ?? lineNumber
                    if chunk.csvLines != nil && line.first == 0x01 {
                        rejects.append(QuarantineRow(file: "", line: number, rejection: Rejection(.invalidJSON, field: nil,
                            "malformed CSV row: " + String(decoding: line.dropFirst(), as: UTF8.self) + "; fix the quoting or the number of cells"),
                            raw: chunk.csvRaw?[recordIndex] ?? Array(line)))
                    } else {
                        parser.lineOffset = inPlace ? start : nil
                        if let r = parser.parse(line, into: &event) {
                            rejects.append(QuarantineRow(file: "", line: number, rejection: r, raw: chunk.csvRaw?[recordIndex] ?? Array(line)))
                        } else {
                            onEvent(event, &parser)
                        }
                    }
                    recordIndex += 1
                } else if chunk.csvLines != nil {
                    recordIndex += 1
                }
                lineNumber += 1
                start = end + 1
            }
        }
        return (rejects, nonBlank)
    }
}

/// The log being built, shared with the merge task of each parallel step.
final class MergeState: @unchecked Sendable {
    var log = EventLog()
    var bytesRead = 0

    func merge(_ chunks: [ParsedChunk], files: [String], onQuarantine: QuarantineHandler?) {
        for chunk in chunks {
            log.counters.eventsRead += chunk.nonBlankLines
            for var row in chunk.rejects {
                log.counters.quarantined[row.rejection.reason, default: 0] += 1
                row.file = files[chunk.file]
                onQuarantine?(row)
            }
            for e in chunk.events { log.append(e, arena: chunk.arena) }
        }
    }
}


/// A stream over bytes in memory.
final class MemoryStream: ByteStream {
    var bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(_ buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n > 0 {
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
        }
        return n
    }
}

/// Bytes already read, then the rest of a stream.
final class MemoryPrefixStream: ByteStream {
    let prefix: MemoryStream
    let rest: ByteStream
    let restDone: Bool
    init(prefix: [UInt8], rest: ByteStream, eof: Bool) {
        self.prefix = MemoryStream(prefix)
        self.rest = rest
        self.restDone = eof
    }
    func read(_ buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let n = try prefix.read(buffer)
        if n > 0 || restDone { return n }
        return try rest.read(buffer)
    }
}
