num_pes: 64
offchip_bw_cstr:
l1_size_cstr: 100
