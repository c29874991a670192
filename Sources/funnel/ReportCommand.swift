import ArgumentParser
import Foundation
import FunnelBase
import FunnelCollector
import FunnelConfig
import FunnelEvents
import FunnelPipeline
import FunnelReport

enum ReportFormat: String, ExpressibleByArgument, CaseIterable { case text, json, html }

/// Output of the commands that print a document or tables.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

/// Shared input options.
struct InputOptions: ParsableArguments {
    @Option(name: .long, help: "Event file (JSON Lines or CSV, optionally gzip), a directory of them, or - for standard input. Repeatable.")
    var events: [String] = []

    @Option(name: .long, help: "Input format: auto (by extension, else sniffed), jsonl, csv, or parquet (with --engine spark).")
    var inputFormat: InputFormat = .auto

    @Option(name: .long, help: "Write every rejected line here as JSON Lines (file, line, reason, field, message, raw).")
    var quarantine: String?

    /// Commands that read events call this from their own `validate()`.
    func requireEvents() throws {
        if events.isEmpty { throw ValidationError("--events is required: pass an event file, a directory, or - for standard input") }
    }

    var source: EventSource { EventSource(paths: events, format: inputFormat, quarantinePath: quarantine) }
}

extension InputFormat: ExpressibleByArgument {}

/// How events are partitioned by user and held within a memory budget.
struct ScaleOptions: ParsableArguments {
    @Option(name: .long, help: "Memory budget (e.g. 1G, 512M): events past a quarter of it are spilled to temporary files, and the log is split by user into partitions counted two at a time.")
    var memory: String = "1G"

    @Option(name: .long, help: "Partitions by user (default: from the input's size and --memory).")
    var partitions: Int?

    @Option(name: .long, help: "Folder for spilled partitions (default: TMPDIR, else /tmp).")
    var tempDir: String?

    func validate() throws {
        guard PartitionPlan.parseSize(memory) != nil else { throw ValidationError("--memory must be a size such as 1G, 512M or a number of bytes; got '\(memory)'") }
        if let partitions, !(1...4096).contains(partitions) { throw ValidationError("--partitions must be 1 to 4096") }
    }

    var plan: PartitionPlan { PartitionPlan(memory: PartitionPlan.parseSize(memory)!, partitions: partitions, temporaryFolder: tempDir) }
}

/// Reads the events of `--events`, with a progress bar on a terminal.
func readEvents(_ input: InputOptions, onQuarantine: QuarantineHandler? = nil) throws -> EventLog {
    let progress = isatty(2) != 0 ? ProgressBar(paths: input.events) : nil
    defer { progress?.finish() }
    var onProgress: (@Sendable (Int) -> Void)? = nil
    if let progress { onProgress = { bytes in progress.update(bytes) } }
    return try readEvents(input.source, onProgress: onProgress, onQuarantine: onQuarantine)
}

/// A failure of the command line itself (an output that cannot be written).
typealias CLIError = PipelineError

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Count the funnel of an experiment and report it.")

    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "funnel.yaml with counting rules and A/B settings (defaults: DESIGN.md §3).")
    var config: String?

    @Option(name: .long, help: "Output format: text (tables), json (DESIGN.md §5) or html (one self-contained file with charts).")
    var format: ReportFormat = .text

    @Option(name: .long, help: "Item attribute CSV (item_id,cohort) for the mix-versus-rate diagnosis; default: deciles of pooled post-click conversion.")
    var items: String?

    @Option(name: .long, help: "Write the report to this file instead of standard output.")
    var output: String?

    @Option(name: .long, parsing: .upToNextOption,
            help: "Summary files written by funnel summarize, merged into one report instead of reading --events (their users must not overlap).")
    var summaries: [String] = []

    @Option(name: .long, help: "Report the events of a collector's store (sqlite:PATH or postgres://USER@HOST:PORT/DATABASE) instead of --events.")
    var store: String?

    @Option(name: .long, help: "Always-valid intervals and p-values beside the fixed-horizon ones, used by the verdict: none, confidence-sequence or msprt (default: ab_testing.sequential in funnel.yaml, else none).")
    var sequential: SequentialMethod?

    @Option(name: .long, help: "Count only the events up to this instant (RFC 3339, e.g. 2026-03-01T00:00:00Z, or epoch milliseconds), as if the log ended there.")
    var asOf: String?

    @Flag(name: .long, help: "One row per UTC day of the experiment, each the report as of that day's end: users, the primary metric's lift with its fixed-horizon and always-valid intervals and p-values, and the verdict so far (text, json, or html with a chart of the path; the log is held in memory).")
    var daily = false

    @OptionGroup var scale: ScaleOptions

    @OptionGroup var spark: SparkOptions

    /// --as-of as epoch milliseconds.
    var asOfMillis: Int64? {
        get throws {
            guard let asOf else { return nil }
            if let n = Int64(asOf), let ms = Timestamp.millis(fromNumber: Double(n)) { return ms }
            let bytes = Array(asOf.utf8)
            if let ms = bytes.withUnsafeBufferPointer({ Timestamp.millis(fromRFC3339: $0) }) { return ms }
            throw ValidationError("--as-of '\(asOf)': expected an RFC 3339 time with an offset (2026-03-01T00:00:00Z) or epoch milliseconds")
        }
    }

    func validate() throws {
        let sources = [!input.events.isEmpty, !summaries.isEmpty, store != nil].filter { $0 }.count
        if sources > 1 { throw ValidationError("pass one of --events, --summaries or --store") }
        if sources == 0 { try input.requireEvents() }
        _ = try asOfMillis
        if spark.engine == .spark {
            if input.events.isEmpty { throw ValidationError("--engine spark reads --events (a file, a directory or a URL Spark can read)") }
            if input.events.contains("-") { throw ValidationError("--engine spark reads files Spark can open, not standard input") }
            if daily || asOf != nil { throw ValidationError("--daily and --as-of count in-process; drop --engine spark") }
        } else if input.inputFormat == .parquet {
            throw ValidationError("--input-format parquet is read through Spark: add --engine spark --master local[2] (or a cluster's URL)")
        }
        if daily {
            if input.events.isEmpty { throw ValidationError("--daily reads --events (it recounts every day from the events, which summaries and stores do not hold in that form)") }
            if asOf != nil { throw ValidationError("--daily gives every day's report as of its end; drop --as-of") }
        }
    }

    func run() throws {
        if daily {
            let path = try DailyPath.run(input.source, configPath: config, sequential: sequential)
            let text = format == .json ? path.document.serialized(pretty: true) + "\n"
                : format == .html ? HTMLReport.renderDaily(path.document)
                : TextReportTable.render(path.table) + "\n" + (path.config.sequential == .none
                    ? "(no always-valid columns: pass --sequential confidence-sequence or msprt, or set ab_testing.sequential)\n"
                    : "primary metric \(path.config.primaryMetric.rawValue); always-valid: \(path.config.sequential.rawValue)\(path.config.sequential == .msprt ? " (p: running minimum over the days)" : "")\n")
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                    throw CLIError("--output \(output): cannot write the file; check the directory exists and is writable")
                }
            } else {
                print(text, terminator: "")
            }
            return
        }
        let doc: JSONValue
        if let store {
            let opened = try StoreLocation(parsing: store).open()
            doc = try reportFromStore(opened, configPath: config, itemsPath: items, plan: scale.plan, sequential: sequential, asOf: try asOfMillis)
        } else {
            let progress = isatty(2) != 0 ? ProgressBar(paths: input.events) : nil
            defer { progress?.finish() }
            var summaryPaths = summaries
            let sparkJob = spark.engine == .spark
                ? try SparkJob(options: spark, events: input.events, format: input.inputFormat, configPath: config,
                               quarantinePath: input.quarantine, partitions: scale.partitions, memory: scale.memory)
                : nil
            defer { sparkJob?.cleanUp() }
            if let sparkJob { summaryPaths = try sparkJob.run() }
            var job = ReportJob(source: input.source, configPath: config, itemsPath: items, summaryPaths: summaryPaths, plan: scale.plan)
            job.sequential = sequential
            job.asOf = try asOfMillis
            var onProgress: (@Sendable (Int) -> Void)? = nil
            if let progress { onProgress = { bytes in progress.update(bytes) } }
            doc = try job.run(onProgress: onProgress)
        }
        let text: String
        switch format {
        case .json: text = doc.serialized(pretty: true) + "\n"
        case .text: text = TextReport.render(doc, color: output == nil && isatty(1) != 0)
        case .html: text = HTMLReport.render(doc)
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                throw CLIError("--output \(output): cannot write the file; check the directory exists and is writable")
            }
        } else {
            print(text, terminator: "")
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check event files: counts of rejected lines by reason and the first examples of each. Exits 1 when anything was quarantined.")

    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "Examples to show per reason.")
    var examples: Int = 3

    func validate() throws { try input.requireEvents() }

    func run() throws {
        let examples = ExampleCollector(limit: self.examples)
        let log = try readEvents(input) { examples.add($0) }
        let c = log.counters
        print("events read:        \(c.eventsRead)")
        print("accepted:           \(log.events.count)")
        print("duplicate events:   \(c.duplicateEvents)")
        print("quarantined:        \(c.quarantinedTotal)")
        for reason in QuarantineReason.allCases {
            print("  \(reason.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0))\(c.quarantined[reason] ?? 0)")
        }
        for reason in QuarantineReason.allCases {
            guard let rows = examples.rows[reason], !rows.isEmpty else { continue }
            print("\nexamples of \(reason.rawValue):")
            for r in rows {
                let raw = String(decoding: r.raw.prefix(160), as: UTF8.self)
                print("  \(r.file):\(r.line): \(r.rejection.field.map { "[\($0)] " } ?? "")\(r.rejection.message)")
                print("    \(raw)\(r.raw.count > 160 ? "…" : "")")
            }
        }
        if c.quarantinedTotal > 0 { throw ExitCode(1) }
    }
}

struct Summarize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reduce the events to a summary file that funnel report --summaries merges with others.",
        discussion: """
            The summary holds everything the report's statistics and diagnosis need for the users in the \
            events (counts, data quality, per-variant and per-segment moments of the per-user sums, \
            per-position and per-item counts, the sensitivity windows, the end of the data); split a log by \
            user, summarize each part anywhere, and merge: `funnel report --summaries a.summary b.summary`. \
            With --part, the events are one part of a larger log split by user (a Spark task's \
            partition): the summary is written even when the part holds no exposure, and funnel report \
            --summaries checks the whole.
            """)

    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "funnel.yaml with counting rules and A/B settings (defaults: DESIGN.md §3); use the same for every part.")
    var config: String?

    @Option(name: .long, help: "Write the summary here (replaced atomically), or - for standard output.")
    var out: String

    @Flag(name: .long, help: "The events are one part of a larger log split by user: write the summary even when this part holds no exposure (funnel report --summaries checks the whole).")
    var part = false

    @OptionGroup var scale: ScaleOptions

    func validate() throws { try input.requireEvents() }

    func run() throws {
        let s = try SummarizeJob(source: input.source, configPath: config, outPath: out, plan: scale.plan, partOfLarger: part).run()
        let users = s.variants.values.reduce(0) { $0 + $1.users.count }
        if out != "-" { printError("summarized \(s.dataQuality.eventsRead) events, \(users) analysed users of experiment '\(s.experiment)' into \(out)") }
    }
}

final class ExampleCollector: @unchecked Sendable {
    let limit: Int
    var rows: [QuarantineReason: [QuarantineRow]] = [:]
    init(limit: Int) { self.limit = limit }
    func add(_ row: QuarantineRow) {
        if rows[row.rejection.reason, default: []].count < limit { rows[row.rejection.reason, default: []].append(row) }
    }
}

/// A one-line progress bar on standard error (only used when it is a terminal).
final class ProgressBar: @unchecked Sendable {
    let total: Int
    var last = -1
    init(paths: [String]) {
        total = paths.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
    }
    func update(_ bytes: Int) {
        guard total > 1 << 24 else { return }
        let pct = min(100, bytes * 100 / max(total, 1))
        if pct == last { return }
        last = pct
        let width = 30
        let filled = pct * width / 100
        FileHandle.standardError.write(Data("\rreading [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(pct) %".utf8))
    }
    func finish() { if last >= 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
extension SequentialMethod: ExpressibleByArgument {}
