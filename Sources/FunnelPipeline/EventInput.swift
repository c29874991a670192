import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelModels
import FunnelOPE

/// A failure of a pipeline step. The typed errors of the layers below are carried as they are (a
/// configuration error keeps its file, line and key; an input error its path), and every case reads
/// as one sentence naming the input and what to do, which the commands print unchanged.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    /// A file that cannot be read, or an event file whose layout is wrong.
    case input(InputError)
    /// funnel.yaml: a key with a wrong value, with its file and line.
    case configuration(ConfigError)
    /// The counting rules cannot run (no single experiment to analyse, for instance).
    case attribution(AttributionError)
    /// A click-model table or model file.
    case model(ModelError)
    /// Logged bandit feedback, a policy file or a position-bias estimate.
    case offPolicy(OPEError)
    /// Anything else, as a sentence.
    case message(String)

    public init(_ message: String) { self = .message(message) }

    public var description: String {
        switch self {
        case .input(let e): return e.description
        case .configuration(let e): return "configuration error: \(e.description)"
        case .attribution(let e): return e.description
        case .model(let e): return e.description
        case .offPolicy(let e): return e.description
        case .message(let m): return m
        }
    }
}

/// Where events come from and where rejected lines go.
public struct EventSource: Sendable {
    /// Event files, directories of them, or `-` for standard input.
    public var paths: [String]
    public var format: InputFormat
    /// Every rejected line is written here as JSON Lines (file, line, reason, field, message, raw).
    public var quarantinePath: String?
    /// About how many bytes a stream input (a pipe) will carry, for sizing partitions when the
    /// size cannot be read from the file system.
    public var sizeHint: Int?

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
        throw .input(error)
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
    do { return try FunnelConfig.load(path: path) } catch { throw .configuration(error) }
}
