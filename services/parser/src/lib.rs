//! kb-mirror parser service
