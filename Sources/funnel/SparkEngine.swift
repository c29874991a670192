import ArgumentParser
import Foundation
import FunnelBase
import FunnelEvents
import FunnelPipeline

/// Where `funnel report` counts the events.
enum Engine: String, ExpressibleByArgument, CaseIterable {
    case inProcess = "in-process"
    case spark
}

/// The options of `funnel report --engine spark`.
struct SparkOptions: ParsableArguments {
    @Option(name: .long, help: "Where the events are counted: in-process, or spark (Spark reads and routes the events by user; each task pipes its partition through this binary's funnel summarize, and the summaries are merged here).")
    var engine: Engine = .inProcess

    @Option(name: .long, help: "With --engine spark: the Spark master, e.g. spark://127.0.0.1:7077, or local[2] to try it on this machine.")
    var master: String?

    @Option(name: .long, help: "With --engine spark: the spark-submit to run (default: $SPARK_HOME/bin/spark-submit, else spark-submit on PATH).")
    var sparkSubmit: String?

    @Option(name: .long, help: "With --engine spark: a Spark setting KEY=VALUE passed to spark-submit --conf (repeatable), e.g. spark.executor.memory=2g.")
    var sparkConf: [String] = []

    @Option(name: .long, help: "With --engine spark: the Funnel binary shipped to the executors (default: this one). For workers without Swift's runtime libraries, ship one built from the same source with swift build -c release --static-swift-stdlib.")
    var sparkBinary: String?

    func validate() throws {
        if engine == .inProcess {
            if master != nil { throw ValidationError("--master is for --engine spark; add --engine spark, or drop --master") }
            if sparkSubmit != nil || !sparkConf.isEmpty || sparkBinary != nil {
                throw ValidationError("--spark-submit, --spark-conf and --spark-binary are for --engine spark")
            }
            return
        }
        guard let master, !master.isEmpty else {
            throw ValidationError("--engine spark needs --master: spark://HOST:PORT for a cluster, or local[2] to run Spark on this machine")
        }
        for c in sparkConf where !c.contains("=") {
            throw ValidationError("--spark-conf '\(c)': expected KEY=VALUE, e.g. spark.executor.memory=2g")
        }
        if let sparkBinary, !FileManager.default.isExecutableFile(atPath: sparkBinary) {
            throw ValidationError("--spark-binary \(sparkBinary): not an executable file; pass a funnel binary built from this source")
        }
    }
}

/// Runs the counting of `funnel report --engine spark`: submits the driver (`Spark/funnel_spark.py`,
/// embedded in this binary) with this binary and funnel.yaml shipped to the executors, and returns
/// the summary files the job wrote, which the caller merges as `--summaries` would.
struct SparkJob {
    var options: SparkOptions
    var events: [String]
    var format: InputFormat
    var configPath: String?
    var quarantinePath: String?
    var partitions: Int?
    var memory: String

    /// The folder holding the job's files; removed by `cleanUp()` (kept when FUNNEL_KEEP_SPARK_WORK is set).
    let work: String

    init(options: SparkOptions, events: [String], format: InputFormat, configPath: String?, quarantinePath: String?,
         partitions: Int?, memory: String) throws {
        self.options = options
        self.events = events
        self.format = format
        self.configPath = configPath
        self.quarantinePath = quarantinePath
        self.partitions = partitions
        self.memory = memory
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("funnel-spark.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CLIError("--engine spark: cannot create a work folder under \(NSTemporaryDirectory()) (\(String(cString: strerror(errno)))); set TMPDIR to a writable folder")
        }
        work = String(cString: made)
    }

    func cleanUp() {
        if ProcessInfo.processInfo.environment["FUNNEL_KEEP_SPARK_WORK"] == nil { try? FileManager.default.removeItem(atPath: work) }
    }

    /// An absolute path for a local path; a URL (hdfs://, s3a://, file:) as given.
    static func absolute(_ path: String) -> String {
        if path.contains("://") || path.hasPrefix("file:") || path.hasPrefix("/") { return path }
        return (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
    }

    /// The partitions by user: --partitions, else one per 256 MiB of local input (at least 4).
    var partitionCount: Int {
        if let partitions { return partitions }
        let local = events.filter { !$0.contains("://") }.map { $0.hasPrefix("file:") ? String($0.dropFirst(5)) : $0 }
        let bytes = EventReader.estimatedBytes(local.flatMap { (try? EventReader.expand($0)) ?? [] })
        return max(4, (bytes + (256 << 20) - 1) / (256 << 20))
    }

    /// spark-submit: --spark-submit, $SPARK_HOME/bin/spark-submit, else the first on PATH.
    func sparkSubmit() throws -> String {
        if let s = options.sparkSubmit {
            guard FileManager.default.isExecutableFile(atPath: s) else {
                throw CLIError("--spark-submit \(s): not an executable file; pass the path of Spark's bin/spark-submit")
            }
            return s
        }
        let env = ProcessInfo.processInfo.environment
        if let home = env["SPARK_HOME"] {
            let s = (home as NSString).appendingPathComponent("bin/spark-submit")
            if FileManager.default.isExecutableFile(atPath: s) { return s }
        }
        for dir in (env["PATH"] ?? "").split(separator: ":") {
            let s = (String(dir) as NSString).appendingPathComponent("spark-submit")
            if FileManager.default.isExecutableFile(atPath: s) { return s }
        }
        throw CLIError("--engine spark: spark-submit not found; install Spark (scripts/spark/install puts pyspark in .venv-spark), then pass --spark-submit PATH, set SPARK_HOME, or put spark-submit on PATH")
    }

    /// The Python of the driver and the executors: PYSPARK_PYTHON, else the python beside
    /// spark-submit (a virtual environment's bin folder, where pip installs pyspark), else python3.
    static func python(beside submit: String) -> String {
        if let p = ProcessInfo.processInfo.environment["PYSPARK_PYTHON"] { return p }
        let sibling = ((submit as NSString).deletingLastPathComponent as NSString).appendingPathComponent("python")
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : "python3"
    }

    static let log4j = """
        rootLogger.level = warn
        rootLogger.appenderRef.stderr.ref = console
        appender.console.type = Console
        appender.console.name = console
        appender.console.target = SYSTEM_ERR
        appender.console.layout.type = PatternLayout
        appender.console.layout.pattern = spark %p %c{1}: %m%n

        """

    /// Submits the job and waits; returns the summary files, sorted.
    func run() throws -> [String] {
        let submit = Self.absolute(try sparkSubmit())
        let python = Self.python(beside: submit)
        let driver = (work as NSString).appendingPathComponent("funnel_spark.py")
        let log4jPath = (work as NSString).appendingPathComponent("log4j2.properties")
        let outDir = (work as NSString).appendingPathComponent("summaries")
        guard FileManager.default.createFile(atPath: driver, contents: Data(PackageResources.funnel_spark_py)),
              FileManager.default.createFile(atPath: log4jPath, contents: Data(Self.log4j.utf8)) else {
            throw CLIError("--engine spark: cannot write the driver into \(work); set TMPDIR to a writable folder")
        }
        let binary = Self.absolute(options.sparkBinary
            ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var files = [binary]
        if let configPath {
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw CLIError("--config \(configPath): no such file")
            }
            files.append(Self.absolute(configPath))
        }
        var args = ["--master", options.master!, "--name", "funnel report", "--files", files.joined(separator: ","),
                    "--driver-java-options", "-Dlog4j2.configurationFile=file:\(log4jPath)",
                    "--conf", "spark.pyspark.python=\(python)", "--conf", "spark.pyspark.driver.python=\(python)",
                    "--conf", "spark.ui.showConsoleProgress=false"]
        for c in options.sparkConf { args += ["--conf", c] }
        args.append(driver)
        for e in events { args += ["--events", Self.absolute(e)] }
        args += ["--input-format", format.rawValue, "--partitions", String(partitionCount), "--binary", (binary as NSString).lastPathComponent,
                 "--memory", memory, "--out-dir", outDir]
        if let configPath { args += ["--config", (configPath as NSString).lastPathComponent] }
        if let quarantinePath { args += ["--quarantine", Self.absolute(quarantinePath)] }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: submit)
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PYSPARK_PYTHON"] = python
        env["PYSPARK_DRIVER_PYTHON"] = python
        process.environment = env
        process.standardOutput = FileHandle.standardError  // the report alone goes to standard output
        do { try process.run() } catch {
            throw CLIError("--engine spark: cannot run \(submit) (\(error.localizedDescription))")
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw CLIError("--engine spark: spark-submit ended with status \(process.terminationStatus); Spark's messages are above (set FUNNEL_KEEP_SPARK_WORK=1 to keep \(work))")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []).filter { $0.hasSuffix(".summary") }.sorted()
        if names.isEmpty {
            throw CLIError("--engine spark: the job returned no summary: the events hold no lines (check --events and --input-format)")
        }
        if let data = FileManager.default.contents(atPath: (outDir as NSString).appendingPathComponent("stats.json")),
           let stats = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            printError("spark: \(Self.describe(stats))")
        }
        return names.map { (outDir as NSString).appendingPathComponent($0) }
    }

    /// One line of the job's statistics for standard error.
    static func describe(_ stats: [String: Any]) -> String {
        func number(_ k: String) -> Double { (stats[k] as? NSNumber)?.doubleValue ?? 0 }
        func int(_ k: String) -> Int { Int(number(k)) }
        let mib = Double(int("shuffle_write_bytes")) / 1_048_576
        let stages = describeStages(stats)
        return "\(int("partitions")) partitions, \(int("tasks")) tasks (\(int("failed_tasks")) failed and retried), "
            + (int("executors") > 0 ? "\(int("executors")) executors (\(int("executors_removed")) lost), " : "")
            + "shuffled \(String(format: "%.1f", mib)) MiB, "
            + "\(int("quarantined")) lines quarantined, \(String(format: "%.1f", number("seconds"))) s in Spark"
            + stages
    }

    /// "; stages: 2 tasks in 1.2 s, 4 tasks in 2.4 s" (the stages that ran, in order), or nothing.
    static func describeStages(_ stats: [String: Any]) -> String {
        let ran = ((stats["stage_seconds"] as? [[String: Any]]) ?? []).compactMap { s -> String? in
            guard let seconds = (s["seconds"] as? NSNumber)?.doubleValue, let tasks = (s["tasks"] as? NSNumber)?.intValue else { return nil }
            return "\(tasks) tasks in \(String(format: "%.1f", seconds)) s"
        }
        return ran.isEmpty ? "" : "; stages: " + ran.joined(separator: ", ")
    }
}
