// swift-tools-version: 6.1
import PackageDescription

// `-fno-math-errno`: a square root need not set errno, so `squareRoot()` of a SIMD vector becomes
// the vector square-root instruction (IEEE, the same result) instead of one scalar root per lane
// behind a libm call for negative inputs (the optimisers' steps in FunnelModels and the kernels).
let noMathErrno = ["-Xcc", "-fno-math-errno"]

// The fused matrix kernel, the AVX2 compilation of the optimiser step and the layers' elementwise
// passes are compiled for AVX2 + FMA on x86-64 and are only called after a run-time check of the processor
// (FunnelModels/Kernels.swift); elsewhere the module is built without the flags and never called.
#if arch(x86_64)
let fusedKernelFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma"] + noMathErrno)]
let wideKernelFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mavx512f", "-Xcc", "-mavx2", "-Xcc", "-mfma"] + noMathErrno)]
#else
let fusedKernelFlags: [SwiftSetting] = [.unsafeFlags(noMathErrno)]
let wideKernelFlags: [SwiftSetting] = [.unsafeFlags(noMathErrno)]
#endif

let package = Package(
    name: "Funnel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "funnel", targets: ["funnel"]),
        .library(name: "FunnelEvents", targets: ["FunnelEvents"]),
        .library(name: "FunnelAttribution", targets: ["FunnelAttribution"]),
        .library(name: "FunnelReport", targets: ["FunnelReport"]),
        .library(name: "FunnelPipeline", targets: ["FunnelPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The collector (`funnel serve`): HTTP server, SQLite store. Hummingbird's optional traits
        // (swift-configuration, full Foundation) are not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The collector's PostgreSQL store.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // zlib, for reading gzip-compressed inputs.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // What every module shares: file and gzip byte streams, line bounds, the CSV tokenizer, the
        // JSON scanner, the JSON value and string quoting, timestamps, the seeded random generator.
        .target(name: "FunnelBase", dependencies: ["CZlib"]),
        // Events: byte-level JSON Lines / CSV readers, validation and quarantine.
        .target(name: "FunnelEvents", dependencies: ["FunnelBase"]),
        // funnel.yaml: every key of the counting rules and A/B settings.
        .target(name: "FunnelConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // The counting rules (DESIGN.md §3, §7): events + config -> per-user sufficient statistics.
        .target(name: "FunnelAttribution", dependencies: ["FunnelBase", "FunnelEvents", "FunnelConfig", "FunnelStats"]),
        // Statistics over per-user sufficient statistics.
        .target(name: "FunnelStats"),
        // The report (JSON, text) built from attribution and statistics.
        // The analysis of an experiment: per-variant estimates, comparisons with corrections, SRM,
        // CUPED, the verdict and the diagnosis, from the attribution's per-user statistics.
        .target(name: "FunnelAnalysis", dependencies: ["FunnelBase", "FunnelAttribution", "FunnelStats", "FunnelConfig", "FunnelEvents"]),
        // The report document (DESIGN.md §5) and its renderings: JSON, text and HTML.
        .target(name: "FunnelReport", dependencies: ["FunnelBase", "FunnelAnalysis", "FunnelAttribution", "FunnelStats", "FunnelConfig", "FunnelEvents"]),
        // The library under the command line and the server: each job (report, position bias,
        // off-policy evaluation, training, calibration) as one call from inputs to a result.
        .target(name: "FunnelPipeline", dependencies: [
            "FunnelBase", "FunnelEvents", "FunnelConfig", "FunnelAttribution", "FunnelStats", "FunnelAnalysis", "FunnelReport",
            "FunnelOPE", "FunnelSimulator", "FunnelModels",
        ]),
        // Off-policy evaluation of ranking policies from logged propensities,
        // and position-bias propensities with debiased click-through.
        .target(name: "FunnelOPE", dependencies: ["FunnelBase", "FunnelStats"]),
        // Click models: tables of hashed features, FTRL logistic regression, evaluation metrics.
        .target(name: "FunnelModels", dependencies: ["FunnelBase", "FunnelKernelsAVX2", "CPrefetch"],
                swiftSettings: [.unsafeFlags(noMathErrno)]),
        // Cache prefetch hints (inline C) for the models' scattered embedding-row updates and the
        // AVX2 kernel's tiles.
        .target(name: "CPrefetch"),
        // The click models' matrix product with AVX2 fused multiply-adds, and the AVX2 compilation of
        // their optimiser step (dispatched at run time).
        .target(name: "FunnelKernelsAVX2", dependencies: ["CPrefetch", "FunnelKernelsAVX512"], swiftSettings: fusedKernelFlags),
        // The matrix kernel's tile, written once over the vector width: its 6 × 32 compilation in
        // 512-bit registers (AVX-512F), which the AVX2 kernel's driver uses for its 32-column
        // strips when the processor has AVX-512F; the driver inlines the same tile at 6 × 16 and 6 × 8.
        .target(name: "FunnelKernelsAVX512", dependencies: ["CPrefetch"], swiftSettings: wideKernelFlags),
        // The collector behind `funnel serve`: request bodies validated into events, a durable
        // store (SQLite or PostgreSQL) with group commit and idempotent ingestion, API keys, the HTTP routes.
        .target(name: "FunnelCollector", dependencies: [
            "FunnelBase", "FunnelEvents", "FunnelConfig", "FunnelPipeline", "CZlib",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // Event-log simulator with known ground truth.
        .target(name: "FunnelSimulator", dependencies: ["FunnelBase"]),
        .executableTarget(
            name: "funnel",
            dependencies: [
                "FunnelBase", "FunnelConfig", "FunnelEvents", "FunnelReport", "FunnelSimulator", "FunnelOPE", "FunnelModels", "FunnelPipeline",
                "FunnelCollector",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // The PySpark driver of `funnel report --engine spark`, written out when a job is submitted.
            resources: [.embedInCode("Spark/funnel_spark.py")]
        ),
        // Builders shared by the test targets: small event logs, temporary folders.
        .target(name: "FunnelTestSupport", dependencies: ["FunnelEvents", "FunnelAttribution", "FunnelConfig"]),
        // The commands in-process (parsing, validation, output files).
        .testTarget(name: "FunnelCLITests", dependencies: ["funnel", "FunnelModels", "FunnelTestSupport"]),
        .testTarget(name: "FunnelBaseTests", dependencies: ["FunnelBase"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FunnelEventsTests", dependencies: ["FunnelEvents", "FunnelBase", "FunnelTestSupport"]),
        .testTarget(name: "FunnelAttributionTests", dependencies: ["FunnelAttribution", "FunnelAnalysis", "FunnelReport", "FunnelConfig", "FunnelEvents", "FunnelBase", "FunnelTestSupport"]),
        .testTarget(name: "FunnelPipelineTests", dependencies: [
            "FunnelPipeline", "FunnelAttribution", "FunnelAnalysis", "FunnelReport", "FunnelConfig", "FunnelEvents", "FunnelOPE", "FunnelBase", "FunnelTestSupport",
            "FunnelSimulator", "FunnelStats",
        ]),
        .testTarget(name: "FunnelConfigTests", dependencies: ["FunnelConfig"]),
        .testTarget(name: "FunnelCollectorTests", dependencies: [
            "FunnelCollector", "FunnelPipeline", "FunnelEvents", "FunnelBase", "FunnelConfig", "FunnelTestSupport", "FunnelSimulator",
        ]),
        .testTarget(name: "FunnelAnalysisTests", dependencies: [
            "FunnelAnalysis", "FunnelAttribution", "FunnelConfig", "FunnelEvents", "FunnelStats", "FunnelTestSupport",
        ]),
        .testTarget(name: "FunnelReportTests", dependencies: [
            "FunnelReport", "FunnelAnalysis", "FunnelAttribution", "FunnelBase", "FunnelConfig", "FunnelEvents", "FunnelTestSupport",
        ]),
        .testTarget(name: "FunnelStatsTests", dependencies: ["FunnelStats", "FunnelTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "FunnelOPETests", dependencies: ["FunnelOPE", "FunnelBase", "FunnelTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "FunnelModelsTests", dependencies: ["FunnelModels", "FunnelBase", "FunnelKernelsAVX2", "FunnelTestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "FunnelSimulatorTests",
            dependencies: ["FunnelSimulator", "FunnelAttribution", "FunnelAnalysis", "FunnelReport", "FunnelConfig", "FunnelEvents", "FunnelBase", "FunnelTestSupport"]
        ),
    ]
)
