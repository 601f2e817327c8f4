// swift-tools-version:5.9
// The harness's portable core: everything that is not UIKit, ExecuTorch or Mach (job decoding
// and validation, result encoding, timing, golden input/summary, error categories, shapes,
// pre/postprocessing arithmetic, the run sequence). It builds and is tested on Linux with
// Debian's swiftlang (agents/harness/ios/scripts/swift-env.sh) and links into the iOS app
// (../project.yml), so what the tests here exercise is the code that runs on the phone.
import PackageDescription

let package = Package(
    name: "HarnessCore",
    platforms: [.iOS(.v17), .macOS(.v13)],
    products: [.library(name: "HarnessCore", targets: ["HarnessCore"])],
    targets: [
        .target(name: "HarnessCore"),
        .testTarget(name: "HarnessCoreTests", dependencies: ["HarnessCore"]),
    ]
)
