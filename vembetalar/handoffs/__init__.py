"""Hand-offs to the systems and people around a case: the Sesam LMN registration request and the
hand-out gate (seed 001), Värmland's order copy to the region's invoice handler (seed 004), and
reconciling what Visma webSesam bills with the events vembetalar lists as billed elsewhere."""
