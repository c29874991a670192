import FunnelKernelsAVX2

/// A DeepFM/DCN-v2 model's dense weights laid out as the fused kernel's panels
/// (`FunnelKernelsAVX2.packPanels`), packed once and then read by every block's forward pass when
/// `logits` scores a table. Without it each block packs every weight again (about a twentieth of
/// a block's time). The panels hold the same values either way, so the logits are the same to
/// the bit.
///
/// Training packs each weight where it multiplies by it instead: with the weights changing every
/// step, packing them once a step for both threads took a synchronisation per step and made the
/// threads read panels the other core had written, and was no faster.
final class PackedWeights: @unchecked Sendable {
    let wide: Bool
    private let layers: [DeepArchitecture.Layer]
    private let storage: UnsafeMutablePointer<Float>
    /// Where each layer's panels start in `storage`, by the offset of its W in the dense parameters.
    private let start: [Int: Int]

    /// Panels for `a`'s dense layers when `kernel` is the fused one (nil otherwise: the baseline
    /// kernel reads W in place).
    init?(_ a: DeepArchitecture, kernel: MatrixKernel) {
        guard kernel.fused else { return nil }
        wide = kernel == .avx512
        layers = a.allLayers
        var start: [Int: Int] = [:], count = 0
        for layer in layers {
            start[layer.weight] = count
            // Each layer's panels start on a cache line.
            count += (packedPanelsCount(inner: layer.inputs, columns: layer.outputs, wide: wide) + 15) & ~15
        }
        self.start = start
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.size, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, count))
    }

    deinit { storage.deallocate() }

    /// Packs every layer's W from the dense parameters at `dense`.
    func pack(_ dense: UnsafePointer<Float>) {
        for l in layers {
            packPanels(dense + l.weight, inner: l.inputs, columns: l.outputs, wide: wide, into: storage + start[l.weight]!)
        }
    }

    /// The panels of `layer`'s W (inner = inputs, columns = outputs).
    func forward(_ layer: DeepArchitecture.Layer) -> UnsafePointer<Float> { UnsafePointer(storage + start[layer.weight]!) }
}
