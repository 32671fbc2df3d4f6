Network n {
  Layer G {
    Type: GEMM
    Dimensions { M: 4, N: 4, K: 8 }
    Dataflow {
      SpatialMap(1,1) M;
      TemporalMap(Sz(R),Sz(R)) K;
    }
  }
}
