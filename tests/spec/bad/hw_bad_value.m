num_pes: 64
noc_bw_cstr: fast
