import Foundation
import FunnelBase
import FunnelConfig
import FunnelEvents

/// A failure of a pipeline step, as a sentence naming the input and what to do. Commands print it
/// as it is.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where events come from and where rejected lines go.
public struct EventSource: Sendable {
    /// Event files, directories of them, or `-` for standard input.
    public var paths: [String]
    public var format: InputFormat
    /// Every rejected line is written here as JSON Lines (file, line, reason, field, message, raw).
    public var quarantinePath: String?

    public init(paths: [String], format: InputFormat = .auto, quarantinePath: String? = nil) {
        self.paths = paths
        self.format = format
        self.quarantinePath = quarantinePath
    }
}

/// Reads and validates events: the log with its counters, rejected lines written to the
/// quarantine file (if any) and handed to `onQuarantine`.
public func readEvents(_ source: EventSource, onProgress: (@Sendable (Int) -> Void)? = nil,
                       onQuarantine: QuarantineHandler? = nil) throws(PipelineError) -> EventLog {
    let file = try QuarantineFile(path: source.quarantinePath)
    defer { file.flush() }
    do throws(InputError) {
        var log = try EventReader.read(paths: source.paths, format: source.format, onProgress: onProgress) { row in
            file.write(row)
            onQuarantine?(row)
        }
        log.dropIDStrings()
        return log
    } catch {
        throw PipelineError(error.description)
    }
}

/// Streams quarantine rows to a file.
final class QuarantineFile: @unchecked Sendable {
    let handle: FileHandle?
    var buffer = Data()
    init(path: String?) throws(PipelineError) {
        guard let path else { handle = nil; return }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw PipelineError("--quarantine \(path): cannot create the file; check the directory exists and is writable")
        }
        handle = h
    }
    func write(_ row: QuarantineRow) {
        guard handle != nil else { return }
        buffer.append(contentsOf: Array((row.jsonLine() + "\n").utf8))
        if buffer.count > 1 << 20 { flush() }
    }
    func flush() {
        handle?.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// The counting rules and A/B settings: funnel.yaml at `path`, or the defaults of DESIGN.md §3.
public func loadConfig(_ path: String?) throws(PipelineError) -> FunnelConfig {
    guard let path else { return FunnelConfig() }
    do { return try FunnelConfig.load(path: path) } catch { throw PipelineError("configuration error: \(error.description)") }
}
