#pragma once
// Internal: one factory and parameter list per kind, each in its own file
// (detectors/<kind>.cc); detector.cc assembles them into kindInfos() and makeDetector().
#include "analytics/detectors/detector.h"

namespace sw::analytics::detail {

KindInfo zscoreInfo();
KindInfo ewmaInfo();
KindInfo holtWintersInfo();
KindInfo cusumInfo();
KindInfo spikeInfo();
KindInfo flatlineInfo();
KindInfo missingInfo();
KindInfo multivariateInfo();

// params are resolved (defaults filled, validated) by the caller.
std::unique_ptr<Detector> makeZScore(const Params& p);
std::unique_ptr<Detector> makeEwma(const Params& p);
std::unique_ptr<Detector> makeHoltWinters(const Params& p);
std::unique_ptr<Detector> makeCusum(const Params& p);
std::unique_ptr<Detector> makeSpike(const Params& p);
std::unique_ptr<Detector> makeFlatline(const Params& p);
std::unique_ptr<Detector> makeMissing(const Params& p);
std::unique_ptr<Detector> makeMultivariate(const Params& p, std::size_t dims);

}  // namespace sw::analytics::detail
